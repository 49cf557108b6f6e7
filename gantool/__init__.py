"""gantool: train classic GANs, export them, and sample fast."""

__version__ = "0.2.0"
