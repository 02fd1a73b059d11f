"""Several real server processes linked by a real Redis."""
