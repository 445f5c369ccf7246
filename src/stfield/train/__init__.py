"""stfield.train."""
