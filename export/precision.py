"""Reduced-precision variants of an exported fp32 generator graph.

- fp16: a strongly typed graph (fp16 weights and activations, fp32 inputs and outputs), made by
  onnxconverter-common. TensorRT 11 has no FP16 builder flag: this graph is how an FP16 engine is built.
- fp16 emulation: the fp32 graph with fp16-rounded weights and a Cast(fp16)->Cast(fp32) pair after
  every float tensor. ONNX Runtime's CPU provider has no fp16 ConvTranspose and silently runs the
  fp16 graph in fp32, which measures weight rounding only; the emulation rounds every intermediate
  the way an fp16 engine stores it, so it is the CPU proxy for the engine.
- int8: ONNX Runtime static quantization in Q/DQ format (symmetric, per-channel weights), the form
  TensorRT 11 requires for INT8, calibrated on generated inputs. Activations s8 (symmetric: TensorRT's
  form) or u8 (asymmetric: what ONNX Runtime's x86 int8 kernels run fastest; cdcgan on one thread of
  an AMD EPYC: 3.3-3.6x its s8 speed, docs/export.md).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from gantool.fileio import atomic_write_bytes
from gantool.contract import INT8_ACTIVATIONS, GeneratorContract
from gantool.errors import GantoolError
from gantool.noise import make_noise
from gantool.spec import ModelSpec

EXPORT_PRECISIONS = ("fp32", "fp16", "int8")  # of the contract's PRECISIONS, what gantool export makes
# Op types kept in fp32 in the fp16 graph, on top of the converter's own block list. The zoo needs
# none: measured on the shipped models, the all-fp16 emulation stays within FP16's 3e-2 bar.
FP16_KEEP_FP32_OPS: tuple[str, ...] = ()
INT8_CALIBRATION_SAMPLES = 512
INT8_EXCLUDED_OPS = ("Gather",)  # the label embedding lookup: a table, not arithmetic worth quantizing
# TensorRT takes int8 Q/DQ with zero points of 0 (symmetric) and float biases (QuantizeBias off).


def to_fp16(model: Any) -> Any:
    """fp32 ModelProto -> strongly typed fp16 ModelProto with fp32 I/O (keep_io_types)."""
    from onnxconverter_common import float16

    block = list(float16.DEFAULT_OP_BLOCK_LIST) + list(FP16_KEEP_FP32_OPS)
    with warnings.catch_warnings():  # it warns for every weight below fp16's range, which it clamps
        warnings.simplefilter("ignore", UserWarning)
        return float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=block,
                                                disable_shape_infer=False)


def fp16_emulation(model: Any) -> Any:
    """The fp32 graph with every float weight and intermediate tensor rounded to fp16."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.shape_inference.infer_shapes(model)
    g = m.graph
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16).astype(np.float32),
                                                  init.name))
    float_names = {v.name for v in [*g.value_info, *g.output, *g.input]
                   if v.type.tensor_type.elem_type == TensorProto.FLOAT}
    nodes = []

    def round_pair(src: str, dst: str) -> list[Any]:
        return [helper.make_node("Cast", [src], [dst + "__h"], to=TensorProto.FLOAT16),
                helper.make_node("Cast", [dst + "__h"], [dst], to=TensorProto.FLOAT)]

    renamed = {}
    for inp in g.input:
        if inp.name in float_names:
            renamed[inp.name] = inp.name + "__r"
            nodes += round_pair(inp.name, renamed[inp.name])
    for node in g.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
        outs = list(node.output)
        pairs = []
        for i, name in enumerate(outs):
            if name in float_names:
                node.output[i] = name + "__f32"
                pairs += round_pair(name + "__f32", name)
        nodes += [node, *pairs]
    del g.node[:]
    g.node.extend(nodes)
    return m


def calibration_batches(spec: ModelSpec, n: int = INT8_CALIBRATION_SAMPLES, batch: int = 64,
                        seed: int = 12345) -> Iterator[dict[str, np.ndarray]]:
    """Generated inputs: the project's noise, every label equally often."""
    contract = GeneratorContract(spec)
    z = make_noise(seed, n, spec.latent_dim, spec.noise)
    labels = contract.default_labels(n)
    for i in range(0, n, batch):
        yield contract.feeds(z[i:i + batch], None if labels is None else labels[i:i + batch])


def to_int8(fp32_path: str | Path, out_path: str | Path, spec: ModelSpec, activations: str = "s8") -> Path:
    """Static Q/DQ quantization, written atomically to out_path; activations: contract.INT8_ACTIVATIONS."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = calibration_batches(spec)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    _quantize(fp32_path, out_path, Reader(), activations)
    return Path(out_path)


def _quantize(fp32_path: str | Path, out_path: str | Path, reader: Any, activations: str = "s8") -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if activations not in INT8_ACTIVATIONS:
        raise GantoolError(f"unknown int8 activations {activations!r}; allowed: {', '.join(INT8_ACTIVATIONS)}.")
    signed = activations == "s8"
    with tempfile.TemporaryDirectory(prefix="gantool-int8-") as tmp:
        tmp_out = Path(tmp) / "model.int8.onnx"
        quantize_static(str(fp32_path), str(tmp_out), reader, quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8 if signed else QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": signed, "WeightSymmetric": True, "QuantizeBias": False,
                                       "OpTypesToExcludeOutputQuantization": []},
                        **_exclude_ops(fp32_path))
        atomic_write_bytes(Path(out_path), tmp_out.read_bytes())


def _exclude_ops(fp32_path: str | Path) -> dict[str, Any]:
    import onnx

    m = onnx.load(str(fp32_path), load_external_data=False)
    types = sorted({n.op_type for n in m.graph.node} - set(INT8_EXCLUDED_OPS))
    return {"op_types_to_quantize": types} if types else {}
