"""FLOPs per sample counted from an ONNX graph: what the roofline divides by.

The exporter counts the graph before export/lower.py rewrites it and records the figure in the
file's metadata, so that work the rewrites add (the folded last layer's zero taps: 2.25x its FLOPs;
cropped phase pixels) is never counted as useful work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

def graph_flops_per_sample(model: Any) -> int:
    """Multiply-adds x 2 of Conv, ConvTranspose, Gemm and MatMul for one sample (batch 1)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for v in [*m.graph.input, *m.graph.output]:  # pin the batch to 1 so that every shape is static
        d = v.type.tensor_type.shape.dim
        if d and d[0].dim_param:
            d[0].dim_value = 1
    del m.graph.value_info[:]
    m = shape_inference.infer_shapes(m)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*m.graph.value_info, *m.graph.input, *m.graph.output]}
    shapes.update({t.name: list(t.dims) for t in m.graph.initializer})
    consts = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    total = 0
    for node in m.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type in ("Gemm", "MatMul"):
            w = shapes.get(node.input[1]) or list(consts[node.input[1]].shape)
            k, n = (w[1], w[0]) if attrs.get("transB", 0) else (w[-2], w[-1])
            rows = int(np.prod(shapes[node.output[0]][:-1])) if shapes.get(node.output[0]) else 1
            total += 2 * rows * k * n
        elif node.op_type == "Conv":
            w, out = shapes[node.input[1]], shapes[node.output[0]]  # (Cout, Cin/g, kh, kw), (1, Cout, H, W)
            total += 2 * int(np.prod(out[1:])) * int(np.prod(w[1:]))
        elif node.op_type == "ConvTranspose":
            w, inp = shapes[node.input[1]], shapes[node.input[0]]  # (Cin, Cout/g, kh, kw), (1, Cin, H, W)
            total += 2 * int(np.prod(inp[1:])) * int(np.prod(w[1:]))
    return total


def peak_activation_values(model: Any) -> int:
    """The largest intermediate tensor of one sample, in values (shape inference already run)."""
    sizes = [int(np.prod(dims[1:])) for v in [*model.graph.value_info, *model.graph.output]
             if len(dims := [d.dim_value for d in v.type.tensor_type.shape.dim]) > 1 and all(dims[1:])]
    return max(sizes, default=0)


def weight_bytes(path: str | Path) -> int:
    """Bytes of the graph's constant tensors: what a batch-1 call reads besides its activations."""
    import onnx
    from onnx import helper

    m = onnx.load(str(path))
    return sum(int(np.prod(t.dims)) * np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
               for t in m.graph.initializer)


def onnx_flops_per_sample(path: str | Path) -> int:
    """The exporter's recorded count when the file has one, else a count of the graph as it is."""
    import onnx

    from gantool.contract import read_metadata

    m = onnx.load(str(path))
    recorded = read_metadata({p.key: p.value for p in m.metadata_props}, str(path)).flops_per_sample
    return recorded if recorded is not None else graph_flops_per_sample(m)
