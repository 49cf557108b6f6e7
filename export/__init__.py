"""Export: ONNX with dynamic batch and labels, FP16/INT8 variants, TensorRT engines, parity checks.

Installs as `gantool.export`; filled in by the export issue.
"""
