"""The engine's one source of time, so tests (and simulations) can move it.

Everything that asks "what time is it?" for business logic calls ``now()``.
"""
import contextlib
import functools
import threading
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone

_lock = threading.Lock()
_fixed = None  # an aware datetime while time is frozen
_offset = timedelta(0)
_local = ContextVar("formflow_clock", default=None)  # a per-context time (simulations)


def now():
    """The current time, aware, in UTC."""
    local = _local.get()
    if local is not None:
        return local
    with _lock:
        if _fixed is not None:
            return _fixed
        return datetime.now(timezone.utc) + _offset


def freeze(at):
    """Stop the clock at ``at`` (aware)."""
    global _fixed
    if at.tzinfo is None:
        raise ValueError("freeze() needs an aware datetime")
    with _lock:
        _fixed = at.astimezone(timezone.utc)


def advance(delta):
    """Move the clock forward (frozen or running)."""
    global _fixed, _offset
    with _lock:
        if _fixed is not None:
            _fixed = _fixed + delta
        else:
            _offset = _offset + delta


def reset():
    global _fixed, _offset
    with _lock:
        _fixed, _offset = None, timedelta(0)


@contextlib.contextmanager
def at(moment):
    """Within this block (and this context only), now() is ``moment``."""
    token = _local.set(moment.astimezone(timezone.utc))
    try:
        yield
    finally:
        _local.reset(token)


DEFAULT_ZONE = "Asia/Shanghai"


def zone():
    """The business time zone (the TIMEZONE setting, default Asia/Shanghai): what "today",
    "this month", working days and cron schedules mean. Outside an app, the default."""
    from flask import current_app, has_app_context
    name = current_app.config.get("TIMEZONE", DEFAULT_ZONE) if has_app_context() else DEFAULT_ZONE
    return _zone_info(name)


@functools.lru_cache(maxsize=16)
def _zone_info(name):
    from zoneinfo import ZoneInfo
    return ZoneInfo(name)
