"""The `image2circuit` command: one typer app; each module registers its own commands."""
from __future__ import annotations

import sys

import typer

from generator.errors import UserError

app = typer.Typer(
    help="Recognise electronic components in photos and schematic symbols: "
    "generate symbol datasets, import photos, train and evaluate a CNN, benchmark CPU vs GPU.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    """Each module owns its commands; heavy imports (TensorFlow) happen inside the commands."""
    from generator import augment, cli as generator_cli, photos
    from trainer import ablation, bench, commands

    for module in (generator_cli, photos, augment, commands, bench, ablation):
        module.register(app)


_register()


def main() -> None:
    """Entry point: user mistakes print one line and exit 2, never a traceback."""
    try:
        app()
    except UserError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted; rerun the same command to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
