"""Workflow: background work now; rules, expressions, actions and timers to come."""
