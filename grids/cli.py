"""``flask grids ...`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from core.cli import error_lines, language_option
from core.extensions import db
from grids import importing

grids_cli = AppGroup("grids", help="Area tree and grid boundaries.")


@grids_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and report, then roll back.")
@language_option
def import_command(file: Path, dry_run: bool, lang: str) -> None:
    """Create or update areas from a GeoJSON FeatureCollection, matched by `code`.

    Each feature's properties: code, name, level, parent_code (null only for the city), and
    optionally timezone, households, grid_kind; grids carry their boundary as the geometry.
    All or nothing: if any feature is invalid, nothing is written.
    """
    try:
        collection = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise click.ClickException(f"{file}: not a JSON file ({error}).") from None
    try:
        result = importing.import_areas(collection)
    except importing.ImportFailed as failure:
        db.session.rollback()
        for problem in failure.problems:
            where = "collection" if problem.index is None else f"features[{problem.index}]"
            if problem.code:
                where += f" (code {problem.code})"
            for line in error_lines(problem.errors, lang):
                click.echo(f"{where}: {line}", err=True)
        raise click.ClickException(
            f"{len(failure.problems)} invalid feature(s); nothing was written."
        ) from None
    except BaseException:
        db.session.rollback()
        raise
    # A CLI command is its own unit of work: this is its one commit.
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    summary = f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged"
    click.echo(summary + (" (dry run: nothing written)" if dry_run else ""))
