"""``flask seed-demo``: a Baotou-like city for the embedded default, seeded once."""

from __future__ import annotations

import click


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Seed demo data (once) and print the demo logins."""
    click.echo("not yet")
