
if __name__ != "gantool.benchmarks":  # the folder is also reachable as a top-level `benchmarks` from the repo root
    raise ImportError(f"import gantool.benchmarks, not {__name__}: one module, one name (gantool/benchmarks links to benchmarks/)")
