"""The engine's own version; blueprints declare which versions they need."""
__version__ = "0.1.0"
