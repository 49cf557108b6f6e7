"""The roofline: the best fp32 matrix product this machine reaches (numpy, PyTorch and ONNX Runtime
at one thread count, timed in the same run). FLOPs per sample are counted from the ONNX graph by
gantool.export.flops."""

from __future__ import annotations

import time
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
