"""`gantool serve`: a local sampling service with micro-batching (the `serve` extra)."""
