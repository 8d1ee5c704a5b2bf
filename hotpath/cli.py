"""The ``hotpath`` command line: one root, one sub-command group per area.

Each area's command module (``hotpath/commands/<area>.py``) exposes ``register(root, bench)``; the root wires them and turns every
:class:`~hotpath.errors.HotpathError` into one clear line on stderr (exit 2), never a stack trace.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys

import typer

from hotpath.errors import HotpathError

root = typer.Typer(no_args_is_help=True, add_completion=False, help="hotpath: recommendations and voice on Ray.")
bench = typer.Typer(no_args_is_help=True, help="Benchmarks (figures and a baseline ratio, JSON with --json).")
root.add_typer(bench, name="bench")

AREAS = (
    "hotpath.commands.cluster",
    "hotpath.commands.recs",
    "hotpath.commands.coview",
    "hotpath.commands.voice",
    "hotpath.commands.intent",
    "hotpath.commands.jobs",
    "hotpath.commands.devices",
    "hotpath.commands.deploy",
    "hotpath.commands.status",
    "hotpath.commands.ab",
    "hotpath.commands.cloud",
)


def _register_areas() -> None:
    for name in AREAS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that area has no CLI yet
                continue
            raise
        module.register(root, bench)
    # Commands that live outside the package (the ``bench`` package's benchmarks), by entry point.
    for ep in importlib.metadata.entry_points(group="hotpath.commands"):
        ep.load()(root, bench)


def main(argv: list[str] | None = None) -> None:
    _register_areas()
    try:
        root(args=argv, standalone_mode=False)
    except HotpathError as exc:
        typer.echo(f"hotpath: error: {exc.one_line()}", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("hotpath: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("hotpath: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
