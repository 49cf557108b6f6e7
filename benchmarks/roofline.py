"""The roofline: the best fp32 matrix product this machine reaches (numpy, PyTorch and ONNX Runtime
at one thread count, timed in the same run) and the FLOPs per sample counted from the ONNX graph."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

MATMUL_N = 1024


def _best_gflops(fn: Callable[[], Any], flops: float, seconds: float = 1.0) -> float:
    fn()  # warm-up
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return flops / best / 1e9


def matmul_peak(threads: int, n: int = MATMUL_N) -> dict[str, float]:
    """GFLOP/s of an n x n x n fp32 product per library; missing libraries are left out."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    flops = 2.0 * n ** 3
    out: dict[str, float] = {"numpy": _best_gflops(lambda: a @ b, flops)}  # numpy's BLAS threads: set by env
    try:
        import torch

        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        out["torch"] = _best_gflops(lambda: ta @ tb, flops)
        torch.set_num_threads(old)
    except ImportError:
        pass
    try:
        from onnx import TensorProto, helper

        from gantool.runtime.backends.ort import OrtBackend

        g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["images"])], "mm",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [n, n])])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 10
        with OrtBackend(model.SerializeToString(), threads=threads) as be:
            out["onnxruntime"] = _best_gflops(lambda: be.infer({"a": a, "b": b}), flops)
    except ImportError:
        pass
    return out


def onnx_flops_per_sample(path: str | Path) -> int:
    """Multiply-adds x 2 of Conv, ConvTranspose, Gemm and MatMul for one sample (batch 1)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    m = onnx.load(str(path))
    # Pin the batch to 1 so that every shape is static.
    for v in [*m.graph.input, *m.graph.output]:
        d = v.type.tensor_type.shape.dim
        if d and d[0].dim_param:
            d[0].dim_value = 1
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
