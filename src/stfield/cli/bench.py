"""``stfield benchmark``: every method, every task, the same stored splits, one table."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import parse_int_list, read_slice, suica_epoch_options

_TASKS = ("spatial", "genes", "denoise", "all")
_DEFAULT_METHODS = "suica,suica-paper,ffn,siren,hashgrid,stage,knn,gaussian,mean"


@click.command("benchmark")
@suica_epoch_options
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for results.csv, results.md, figures/ and protocols/.",
)
@click.option(
    "--task",
    type=click.Choice(_TASKS),
    default="all",
    show_default=True,
    help="Degradation protocol(s) to run.",
)
@click.option(
    "--methods",
    default=_DEFAULT_METHODS,
    show_default=True,
    help="Comma-separated methods: suica (stfield's default model), suica-paper (published "
    "configuration), suica-noae, suica-nodice, suica-nograph, suica-siren, suica-leaky, "
    "suica-knn, ffn, siren, hashgrid, stage, knn, gaussian (Nadaraya-Watson kernel smoothing), "
    "mean.",
)
@click.option(
    "--seeds",
    default="0,1,2",
    show_default=True,
    help="Comma-separated seeds; one set of splits/masks per seed.",
)
@click.option(
    "--bin-size",
    type=float,
    default=10.0,
    show_default=True,
    help="Spot size in µm used to bin a transcripts table.",
)
@click.option(
    "--labels",
    "labels_key",
    default=None,
    help="obs column of labels: adds the ARI of clustered predictions.",
)
@click.option(
    "--preset",
    type=click.Choice(("stfield", "paper", "fast")),
    default=None,
    help="Training schedule of every SUICA method (options below override it) [default: each "
    "method's own: stfield for suica, paper for suica-paper and the ablations].",
)
@click.option(
    "--normalize/--no-normalize",
    default=True,
    show_default=True,
    help="Apply SUICA's appendix-G preprocessing (stfield.pp.normalize_suica) first.",
)
def benchmark(
    input_path: Path,
    out_dir: Path,
    task: str,
    methods: str,
    seeds: str,
    bin_size: float,
    labels_key: str | None,
    preset: str | None,
    epochs_gae: int | None,
    epochs_inr: int | None,
    epochs_decoder: int | None,
    normalize: bool,
) -> None:
    """Run every method on every task of INPUT on identical stored splits; write one table."""
    from .. import pp
    from ..bench.harness import run_benchmark

    seed_list = parse_int_list(seeds, "--seeds")
    adata = read_slice(input_path, bin_size)
    if normalize:
        pp.normalize_suica(adata)
    suica_opts = {
        "preset": preset,
        "epochs_gae": epochs_gae,
        "epochs_inr": epochs_inr,
        "epochs_decoder": epochs_decoder,
    }
    suica_opts = {k: v for k, v in suica_opts.items() if v is not None}
    inr_opts = {} if epochs_inr is None else {"epochs": epochs_inr}
    options = {
        name: dict(suica_opts)
        for name in (
            "suica",
            "suica-paper",
            "suica-nodice",
            "suica-nograph",
            "suica-noae",
            "suica-siren",
            "suica-leaky",
            "suica-knn",
        )
    }
    options.update({name: dict(inr_opts) for name in ("ffn", "siren", "hashgrid")})
    table = run_benchmark(
        adata,
        out_dir,
        tasks=task,
        methods=methods,
        seeds=seed_list,
        labels_key=labels_key,
        method_options=options,
    )
    click.echo(
        f"{len(table)} rows ({adata.n_obs:,} spots × {adata.n_vars:,} genes) -> "
        f"{out_dir / 'results.csv'}, {out_dir / 'results.md'}"
    )
