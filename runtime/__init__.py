"""The runtime apps embed: numpy + pillow + onnxruntime. Never imports torch or onnx.

    from gantool.runtime import Generator
    g = Generator.load("cgan")            # or a .onnx / .plan file
    images = g.sample(labels=[3, 3, 7], seed=0)   # uint8 (3, 28, 28)
"""

if __name__ != "gantool.runtime":  # the folder is also reachable as a top-level `runtime` from the repo root
    raise ImportError(f"import gantool.runtime, not {__name__}: one module, one name (gantool/runtime links to runtime/)")

from gantool.runtime.generator import Generator, SampleError

__all__ = ["Generator", "SampleError"]
