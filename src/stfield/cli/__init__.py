"""The ``stfield`` command line: a thin layer over ``stfield.io``/``pp``/``tl``/``bench``.

Every subcommand raises ``ValueError``/``FileNotFoundError`` for bad input; :func:`main` turns
those into one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys

import click

from .. import __version__
from .core import demo, info

_SUBCOMMANDS = [info, demo]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stfield")
def cli() -> None:
    """stfield: learn continuous fields and discrete codes of spatial transcriptomics."""


for _command in _SUBCOMMANDS:
    cli.add_command(_command)


def _register_optional() -> None:
    # Model subcommands import torch; they register here so `stfield --help` lists them.
    from . import _optional

    for command in _optional.commands():
        cli.add_command(command)


_register_optional()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stfield`` console script."""
    try:
        cli.main(args=argv, prog_name="stfield", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return 2
    except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except OSError as exc:  # e.g. a full disk or a read-only folder while writing an output
        click.echo(f"error: could not read or write a file: {exc}", err=True)
        return 2
    except MemoryError as exc:
        click.echo(f"error: out of memory ({exc}); use a larger bin size or fewer genes", err=True)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
