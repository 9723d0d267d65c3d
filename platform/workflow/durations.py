"""Durations in rule definitions: ``{"days": 3, "hours": 2}``, and "now plus" one, in working days."""
from datetime import timedelta

from .. import clock


def duration(spec):
    spec = spec or {}
    return timedelta(minutes=spec.get("minutes", 0), hours=spec.get("hours", 0), days=spec.get("days", 0),
                     weeks=spec.get("weeks", 0))


def later(spec):
    """Now plus a due/after spec; ``working_days`` steps over Saturdays and Sundays in the business
    time zone (public holidays are not known), keeping the time of day."""
    moment = clock.now() + duration(spec)
    days = spec.get("working_days", 0)
    if days:
        local = moment.astimezone(clock.zone())
        while days:
            local += timedelta(days=1)
            if local.weekday() < 5:
                days -= 1
        moment = local
    return moment
