"""The roofline: the best fp32 matrix product this machine reaches (numpy, PyTorch and ONNX Runtime
at one thread count, timed in the same run). FLOPs per sample are counted from the ONNX graph by
gantool.export.flops.

At batch 1 a generator also reads every weight once per call, and they do not stay in a 1 MiB L2
between calls: `weight_stream_gb_per_s` is how fast ONNX Runtime streams a weight matrix through a
batch-1 MatMul (a GEMV) of the same size, so weight bytes / that rate is a second, memory floor."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from gantool.contract import IMAGES  # the output name OrtBackend.infer fetches
from gantool.cpu import cpu_info

MATMUL_N = 1024


def _best_rate(fn: Callable[[], Any], work: float, seconds: float = 1.0) -> float:
    """work (FLOPs, bytes) per ns of fn's fastest call in `seconds`: GFLOP/s, GB/s."""
    fn()  # warm-up
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return work / best / 1e9


def _matmul_graph(a_shape: tuple[int, int], b_shape: tuple[int, int], b: np.ndarray | None = None) -> bytes:
    """An ONNX graph images = a @ b; b is a constant weight when given, else an input."""
    from onnx import TensorProto, helper, numpy_helper

    inputs = [helper.make_tensor_value_info("a", TensorProto.FLOAT, list(a_shape))]
    if b is None:
        inputs.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, list(b_shape)))
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], [IMAGES])], "mm", inputs,
                          [helper.make_tensor_value_info(IMAGES, TensorProto.FLOAT, [a_shape[0], b_shape[1]])],
                          [] if b is None else [numpy_helper.from_array(b, "b")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model.SerializeToString()


def weight_stream_gb_per_s(threads: int, k: int = 256, n: int = 4096) -> float | None:
    """GB/s of ONNX Runtime's batch-1 MatMul over a k x n fp32 weight (4 MiB: past L2, inside L3, as a
    generator's weights are), or None without onnx and onnxruntime."""
    try:
        from gantool.runtime.backends.ort import OrtBackend

        w = np.random.default_rng(0).standard_normal((k, n), dtype=np.float32)
        x = np.ones((1, k), np.float32)
        with OrtBackend(_matmul_graph((1, k), (k, n), w), threads=threads) as be:
            return _best_rate(lambda: be.infer({"a": x}), w.nbytes)  # bytes per ns = GB/s
    except ImportError:
        return None


def matmul_peak(threads: int, n: int = MATMUL_N) -> dict[str, float]:
    """GFLOP/s of an n x n x n fp32 product per library; missing libraries are left out."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    flops = 2.0 * n ** 3
    out: dict[str, float] = {"numpy": _best_rate(lambda: a @ b, flops)}  # numpy's BLAS threads: set by env
    try:
        import torch

        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        out["torch"] = _best_rate(lambda: ta @ tb, flops)
        torch.set_num_threads(old)
    except ImportError:
        pass
    try:
        from gantool.runtime.backends.ort import OrtBackend

        with OrtBackend(_matmul_graph((n, n), (n, n)), threads=threads) as be:
            out["onnxruntime"] = _best_rate(lambda: be.infer({"a": a, "b": b}), flops)
    except ImportError:
        pass
    return out


def reduced_precision_peaks(threads: int, n: int = MATMUL_N) -> dict[str, float]:
    """GFLOP/s (int8: GOP/s) of the faster of an n^3 and a (2n)^3 product in bf16 and int8, through PyTorch's CPU kernels (oneDNN:
    AMX or AVX512-BF16/VNNI where the CPU has them). Left out without torch or without the kernel."""
    try:
        import torch
    except ImportError:
        return {}
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    out: dict[str, float] = {}
    try:
        g = torch.Generator().manual_seed(0)
        for m in (n, 2 * n):  # AMX reaches its rate only on the larger product
            a, b = torch.randn(m, m, generator=g), torch.randn(m, m, generator=g)
            ab, bb = a.bfloat16(), b.bfloat16()
            out["bf16"] = max(out.get("bf16", 0.0), _best_rate(partial(torch.matmul, ab, bb), 2.0 * m ** 3))
            ai, bi = (a * 40).clamp(-127, 127).to(torch.int8), (b * 40).clamp(-127, 127).to(torch.int8)
            try:
                out["int8"] = max(out.get("int8", 0.0), _best_rate(partial(torch._int_mm, ai, bi), 2.0 * m ** 3))
            except (RuntimeError, AttributeError):  # no int8 GEMM kernel for this CPU in this torch
                pass
    finally:
        torch.set_num_threads(old)
    return out


def machine_info() -> dict[str, Any]:
    """What every benchmark result records: the machine changes between sessions (docs/benchmarks.md)."""
    import sys

    cpu = cpu_info()
    return {"cpu_model": cpu.model, "cpu_flags": cpu.notable_flags, "cpus": cpu.cpus,
            "python": sys.version.split()[0], "numpy": np.__version__}
