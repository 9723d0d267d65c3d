"""Reports: JSON definitions compiled to SQL, run under row-level access."""
