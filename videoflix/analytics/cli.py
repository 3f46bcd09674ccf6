"""`flask analytics rollup`: fold closed playback sessions now (the worker does it every 5 minutes)."""
import click
from flask.cli import AppGroup

from videoflix.analytics import rollup

analytics_group = AppGroup("analytics", help="Viewing analytics.")


@analytics_group.command("rollup")
def rollup_command():
    """Fold closed playback sessions into the per-video-day counts and delete the sessions past
    ANALYTICS_RAW_DAYS."""
    result = rollup.run()
    if not result.claimed:
        raise click.ClickException("Another process is rolling up right now; try again in a few minutes.")
    click.echo(f"{result.folded} session(s) folded, {result.purged} deleted.")
