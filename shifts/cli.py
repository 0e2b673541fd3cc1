"""``flask shifts ...`` commands."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from shifts.tasks import TOP_UP_BATCH, top_up_batch

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
    total_series = total_shifts = 0
    while True:
        result = top_up_batch(limit=batch_size)
        total_series += result.series
        total_shifts += result.shifts
        if result.series < batch_size:
            break
    click.echo(f"{total_shifts} shifts made for {total_series} series.")
