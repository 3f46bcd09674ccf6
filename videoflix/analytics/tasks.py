"""The roll-up as a periodic task: every worker's scheduler enqueues it every 5 minutes and the
roll-up's claim lets one run at a time (the others find it taken, or nothing left to fold).

Declarations only: the module path names the queued jobs, keep it stable.
"""
from huey import crontab

from videoflix.analytics import rollup
from videoflix.tasks import periodic_task


@periodic_task(crontab(minute="*/5"))
def rollup_playback_sessions():
    rollup.run()
