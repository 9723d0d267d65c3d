"""The workflow engine: rules (triggers, conditions, actions) over the forms' records.

Its parts, from the top down: ``tasks`` (the queue's tick), ``timers`` (time and cron
triggers), ``fanout`` / ``simulation`` / ``report_delivery`` (work done in queued jobs),
``engine`` (which rules an event fires, the run log), ``actions`` (what rules do, a registry),
``assignment`` / ``handover`` / ``audience`` (owners and who is told), ``flows`` (status
flows), ``jobs`` / ``outbox`` / ``queue`` (background work), ``expressions`` (the sandbox),
``runstate`` and ``durations`` (shared by all). ``init_app`` connects them to the records
service; nothing below imports anything above it.
"""


def init_app(app):
    """Subscribe the workflow to record saves, in order: flow checks before a save; after it the
    state history, the rules, the timers and the hand-over of open work."""
    from ..forms import definitions, records
    from . import engine, fanout, flows, handover, timers  # noqa: F401 (fanout registers for_each)

    def subscribe(hooks, fn):
        if fn not in hooks:
            hooks.append(fn)
    subscribe(records.before_save, flows.enforce)
    subscribe(records.after_save, flows.track)
    subscribe(records.after_save, engine.on_save)
    subscribe(records.after_save, timers.on_save)
    handover.init_app(app)
    subscribe(definitions.extra_checks, flows.check_guards)
