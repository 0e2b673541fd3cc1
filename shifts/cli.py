"""``flask shifts ...`` commands."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from shifts.series.tasks import TOP_UP_BATCH, top_up_all

shifts_cli = AppGroup("shifts", help="Shifts and repeating series.")


@shifts_cli.command("top-up")
@click.option(
    "--batch-size", type=click.IntRange(1, 10_000), default=TOP_UP_BATCH, show_default=True,
    help="Series expanded per batch.",
)
def top_up_command(batch_size: int) -> None:
    """Expand every active repeating series to the planning horizon (SERIES_HORIZON_DAYS).

    Runs batches until no series is due; safe to run while another run or the periodic task works.
    """
    result = top_up_all(batch_size=batch_size)
    click.echo(f"{result.shifts} shifts made for {result.series} series.")
