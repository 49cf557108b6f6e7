"""The lazily imported ONNX Runtime, with a clear error when neither extra is installed."""

from __future__ import annotations

from types import ModuleType

from gantool.errors import GantoolError


def import_onnxruntime() -> ModuleType:
    try:
        import onnxruntime
    except ImportError:
        raise GantoolError("ONNX Runtime is not installed, and the gantool runtime needs it to sample.",
                           note='install exactly one of: pip install "gantool[cpu]" (onnxruntime) or '
                                'pip install "gantool[gpu]" (onnxruntime-gpu); both ship the same module.') from None
    return onnxruntime
