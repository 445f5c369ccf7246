"""Coordinate backbones: registry, shapes, initialisation, fitting a simple 2-D function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stfield.models.backbones import BACKBONES, FFN, SIREN, HashGrid, make_backbone

SMALL = {
    "ffn": {"width": 64, "depth": 2, "scale": 2.0, "mapping_size": 64},
    "siren": {"width": 64, "depth": 2},
    "hashgrid": {"n_levels": 6, "max_resolution": 64, "log2_hashmap_size": 10, "width": 32},
}


def _target(xy: torch.Tensor) -> torch.Tensor:
    return torch.stack(
        [torch.sin(3 * xy[:, 0]) * torch.cos(2 * xy[:, 1]), xy[:, 0] * xy[:, 1]], dim=1
    )


def test_registry_names():
    assert set(BACKBONES) == {"ffn", "siren", "hashgrid"}
    with pytest.raises(ValueError, match="unknown backbone"):
        make_backbone("nerf", 2, 4)
    with pytest.raises(ValueError, match="bad options"):
        make_backbone("siren", 2, 4, scale=3.0)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_fits_a_2d_function_better_than_a_constant(name):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    train = torch.rand(400, 2, generator=gen) * 2 - 1
    test = torch.rand(200, 2, generator=gen) * 2 - 1
    net = make_backbone(name, 2, 2, **SMALL[name])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3 if name != "hashgrid" else 1e-2)
    y = _target(train)
    for _ in range(250):
        opt.zero_grad()
        loss = torch.mean((net(train) - y) ** 2)
        loss.backward()
        opt.step()
    with torch.no_grad():
        err = torch.mean((net(test) - _target(test)) ** 2).item()
    constant = torch.mean((_target(test) - y.mean(0)) ** 2).item()
    assert err < 0.25 * constant, (name, err, constant)


@pytest.mark.parametrize("name", sorted(BACKBONES))
@pytest.mark.parametrize("dim", [2, 3])
def test_shapes_and_config_round_trip(name, dim):
    torch.manual_seed(0)
    net = make_backbone(name, dim, 5, **SMALL[name])
    x = torch.rand(17, dim) * 2 - 1
    assert net(x).shape == (17, 5)
    cfg = net.config()
    assert cfg["in_dim"] == dim and cfg["out_dim"] == 5
    clone = make_backbone(name, **cfg)
    clone.load_state_dict(net.state_dict())
    torch.testing.assert_close(clone(x), net(x))


def test_ffn_fourier_features_and_reference_variant():
    torch.manual_seed(0)
    net = FFN(2, 3, mapping_size=256, scale=10.0, width=32, depth=3, activation="none")
    assert net.features.B.shape == (2, 256)
    assert 8.5 < net.features.B.std().item() < 11.5
    assert not any(isinstance(m, torch.nn.ReLU) for m in net.mlp)
    feats = net.features(torch.zeros(1, 2))
    torch.testing.assert_close(feats[0, :256], torch.zeros(256))  # sin(0)
    torch.testing.assert_close(feats[0, 256:], torch.ones(256))  # cos(0)
    assert "features.B" in net.state_dict()  # saved with the weights
    with pytest.raises(ValueError, match="activation"):
        FFN(2, 3, activation="tanh")


def test_siren_initialisation():
    torch.manual_seed(0)
    net = SIREN(2, 4, width=256, depth=3, w0=30.0)
    first = net.net[0].linear.weight
    hidden = net.net[1].linear.weight
    assert first.abs().max().item() <= 1 / 2 + 1e-6
    bound = np.sqrt(6 / 256) / 30
    assert hidden.abs().max().item() <= bound + 1e-7
    assert hidden.abs().max().item() > 0.9 * bound
    assert net.net[0].w0 == 30.0


def test_hashgrid_levels_interpolation_and_clamping():
    torch.manual_seed(0)
    net = HashGrid(2, 1, n_levels=4, base_resolution=4, max_resolution=256, log2_hashmap_size=8)
    assert net.resolutions[0] == 4 and net.resolutions[-1] == 256
    assert net.dense_level[0] and not net.dense_level[-1]  # coarse levels direct, fine hashed
    enc = net.encode(torch.tensor([[-1.0, -1.0], [1.0, 1.0], [5.0, -7.0]]))
    assert enc.shape == (3, 4 * 2) and torch.isfinite(enc).all()
    # Outside [-1, 1] is clamped to the border.
    torch.testing.assert_close(enc[2], net.encode(torch.tensor([[1.0, -1.0]]))[0])
    # Continuous: nearby points give nearby features.
    a = net.encode(torch.tensor([[0.1234, -0.321]]))
    b = net.encode(torch.tensor([[0.1235, -0.321]]))
    assert (a - b).abs().max().item() < 1e-5


def test_nyquist_scale_from_spot_spacing():
    from stfield.models.backbones import nyquist_scale

    xs, ys = np.meshgrid(np.linspace(-1, 1, 41), np.linspace(-1, 1, 41))
    coords = np.column_stack([xs.ravel(), ys.ravel()])  # spacing 0.05 -> Nyquist 10
    assert nyquist_scale(coords) == pytest.approx(2.5)
    assert nyquist_scale(coords, fraction=1.0) == pytest.approx(10.0)
