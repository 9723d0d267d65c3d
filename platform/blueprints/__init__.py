"""Blueprints: process bundles (forms, rules, reports, people, demo data) loaded as data."""
