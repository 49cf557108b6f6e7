"""Training: data -> zoo models -> losses -> loop -> checkpoints. Needs the `train` extra (torch)."""
