"""Export: ONNX with dynamic batch and labels, FP16/INT8 variants, TensorRT engines, parity checks.

Installs as `gantool.export`; filled in by the export issue.
"""

if __name__ != "gantool.export":  # the folder is also reachable as a top-level `export` from the repo root
    raise ImportError(f"import gantool.export, not {__name__}: one module, one name (gantool/export links to export/)")
