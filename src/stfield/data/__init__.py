"""stfield.data."""
