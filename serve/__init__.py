"""`gantool serve`: a local sampling service with micro-batching (the `serve` extra)."""

if __name__ != "gantool.serve":  # the folder is also reachable as a top-level `serve` from the repo root
    raise ImportError(f"import gantool.serve, not {__name__}: one module, one name (gantool/serve links to serve/)")
