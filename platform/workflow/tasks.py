"""The workflow's background tasks: outbox delivery and the once-a-minute tick."""
import logging

from huey import crontab

from . import outbox, timers
from .queue import periodic, task

log = logging.getLogger(__name__)


@task()
def deliver_outbox(entry_id):
    return outbox.deliver(entry_id)


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
    if fired or crons or sent:
        log.info("tick: %s timers, %s cron rules, %s deliveries", fired, crons, len(sent))
    return fired, crons, len(sent)
