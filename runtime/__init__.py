"""The runtime apps embed: numpy + pillow + onnxruntime. Never imports torch or onnx.

    from gantool.runtime import Generator
    g = Generator.load("cgan")            # or a .onnx / .plan file
    images = g.sample(labels=[3, 3, 7], seed=0)   # uint8 (3, 28, 28)
"""

from gantool.runtime.generator import Generator, SampleError

__all__ = ["Generator", "SampleError"]
