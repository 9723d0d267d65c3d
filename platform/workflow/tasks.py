"""The workflow's once-a-minute tick (outbox delivery and jobs declare their own tasks)."""
import logging

from huey import crontab

from . import fanout, jobs, outbox, report_delivery, simulation, timers  # noqa: F401 (job kinds register)
from .queue import periodic, task

log = logging.getLogger(__name__)


@periodic(crontab(minute="*"))
def tick():
    """Every minute: fire due time triggers and cron rules; deliver what the outbox still holds."""
    return run_tick()


@task()
def tick_now():
    """The same work on demand (huey keeps no results for periodic tasks)."""
    return run_tick()


def run_tick():
    fired = timers.sweep()
    crons = timers.run_cron()
    sent = outbox.sweep()
    requeued = jobs.sweep()
    dropped = timers.prune()
    if fired or crons or sent or requeued or any(dropped.values()):
        log.info("tick: %s timers, %s cron rules, %s deliveries, %s jobs re-queued, pruned %s",
                 fired, crons, len(sent), requeued, dropped)
    return fired, crons, len(sent)
