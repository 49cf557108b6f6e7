"""Training: data -> zoo models -> losses -> loop -> checkpoints. Needs the `train` extra (torch)."""

if __name__ != "gantool.train":  # the folder is also reachable as a top-level `train` from the repo root
    raise ImportError(f"import gantool.train, not {__name__}: one module, one name (gantool/train links to train/)")
