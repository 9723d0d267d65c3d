"""What a rule run in progress knows about itself: the chain of rules that led to it (for the
depth and cycle limits) and whether it is a dry run. Every part of the workflow may ask; this
module asks nothing of them."""
from contextlib import contextmanager
from contextvars import ContextVar

chain = ContextVar("formflow_rule_chain", default=())
_dry = ContextVar("formflow_dry_run", default=False)


class Stop(Exception):
    """The stop action: no further actions of this rule."""


def is_dry():
    return _dry.get()


@contextmanager
def dry():
    """Within this block rules run as dry runs: no outbox, nothing queued."""
    token = _dry.set(True)
    try:
        yield
    finally:
        _dry.reset(token)
