"""TrtBackend's buffer, CUDA-graph and event logic on the CPU, against a fake cuda.bindings.runtime whose
"device" memory is host memory and a fake TensorRT context that computes on it. What this proves: buffers
are allocated once for the profile's largest batch and bound once, inputs go through the pinned buffers,
results are copies (the next call cannot change them), a CUDA graph is captured once per batch size and
replayed with the current inputs, every call gets a GPU time, and deactivate frees everything. What it
cannot prove: that the real CUDA and TensorRT calls behave as these fakes do (the `gpu`/`trt` tests and
benchmarks/gpu_check.sh do that on a GPU machine)."""

from __future__ import annotations

import ctypes
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest

from gantool.contract import write_metadata
from gantool.errors import GantoolError
from gantool.paths import shipped_onnx
from gantool.runtime.backends import infer_split
from gantool.runtime.backends.trt import SIDECAR_SCHEMA, TrtBackend

TRT_VERSION = "10.12.0.36"


class FakeCudart(ModuleType):
    """The cuda.bindings.runtime calls TrtBackend makes; memory is ctypes buffers, copies are memmove."""

    def __init__(self) -> None:
        super().__init__("cuda.bindings.runtime")
        self.buffers: dict[int, Any] = {}  # pointer -> ctypes buffer (device and pinned alike)
        self.device: set[int] = set()
        self.pinned: set[int] = set()
        self.freed: list[int] = []
        self.capturing: list[Any] | None = None
        self.launches = 0
        self.events: set[int] = set()
        self.graphs: set[int] = set()
        self.streams = 0
        self.cudaMemcpyKind = SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2)
        self.cudaStreamCaptureMode = SimpleNamespace(cudaStreamCaptureModeGlobal=0)

    def _alloc(self, n: int) -> int:
        buf = ctypes.create_string_buffer(n)
        ptr = ctypes.addressof(buf)
        self.buffers[ptr] = buf
        return ptr

    def cudaMalloc(self, n: int) -> tuple[int, int]:
        ptr = self._alloc(n)
        self.device.add(ptr)
        return 0, ptr

    def cudaMallocHost(self, n: int) -> tuple[int, int]:
        ptr = self._alloc(n)
        self.pinned.add(ptr)
        return 0, ptr

    def cudaFree(self, ptr: int) -> tuple[int]:
        self.device.remove(ptr)
        self.freed.append(ptr)
        return (0,)

    def cudaFreeHost(self, ptr: int) -> tuple[int]:
        self.pinned.remove(ptr)
        self.freed.append(ptr)
        return (0,)

    def cudaMemcpyAsync(self, dst: int, src: int, n: int, kind: int, stream: int) -> tuple[int]:
        assert (dst in self.device) == (kind == 1) and (src in self.pinned) == (kind == 1), "pinned <-> device only"
        ctypes.memmove(dst, src, n)
        return (0,)

    def cudaStreamCreate(self) -> tuple[int, int]:
        self.streams += 1
        return 0, 7

    def cudaStreamDestroy(self, stream: int) -> tuple[int]:
        self.streams -= 1
        return (0,)

    def cudaStreamSynchronize(self, stream: int) -> tuple[int]:
        return (0,)

    def cudaEventCreate(self) -> tuple[int, int]:
        e = 100 + len(self.events)
        self.events.add(e)
        return 0, e

    def cudaEventDestroy(self, e: int) -> tuple[int]:
        self.events.remove(e)
        return (0,)

    def cudaEventRecord(self, e: int, stream: int) -> tuple[int]:
        return (0,)

    def cudaEventElapsedTime(self, a: int, b: int) -> tuple[int, float]:
        return 0, 0.25

    def cudaStreamBeginCapture(self, stream: int, mode: int) -> tuple[int]:
        self.capturing = []
        return (0,)

    def cudaStreamEndCapture(self, stream: int) -> tuple[int, list[Any]]:
        ops, self.capturing = self.capturing, None
        return 0, ops

    def cudaGraphInstantiate(self, graph: list[Any], flags: int) -> tuple[int, int]:
        g = 1000 + len(self.graphs)
        self.graphs.add(g)
        self.graph_ops = {**getattr(self, "graph_ops", {}), g: list(graph)}
        return 0, g

    def cudaGraphDestroy(self, graph: list[Any]) -> tuple[int]:
        return (0,)

    def cudaGraphLaunch(self, g: int, stream: int) -> tuple[int]:
        self.launches += 1
        for op in self.graph_ops[g]:
            op()
        return (0,)

    def cudaGraphExecDestroy(self, g: int) -> tuple[int]:
        self.graphs.remove(g)
        return (0,)


class FakeContext:
    """images[i] = z[i].sum() + labels[i], computed from the bound device addresses at the current shapes."""

    def __init__(self, cudart: FakeCudart, image: tuple[int, ...], latent: int) -> None:
        self.cudart, self.image, self.latent = cudart, image, latent
        self.addresses: dict[str, int] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.executed = 0
        self.address_sets = 0

    def set_tensor_address(self, name: str, ptr: int) -> None:
        self.addresses[name] = ptr
        self.address_sets += 1

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self.shapes[name] = tuple(shape)
        return True

    def _view(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return np.frombuffer((ctypes.c_uint8 * n).from_address(self.addresses[name]), dtype=dtype).reshape(shape)

    def _compute(self) -> None:
        b = self.shapes["z"][0]
        z, y = self._view("z", (b, self.latent), np.float32), self._view("labels", (b,), np.int64)
        out = self._view("images", (b, *self.image), np.float32)
        out[:] = (z.sum(1) + y)[:, None, None, None]

    def execute_async_v3(self, stream: int) -> bool:
        assert isinstance(stream, int)
        self.executed += 1
        if self.cudart.capturing is not None:
            shapes = dict(self.shapes)

            def replay() -> None:
                assert self.shapes == shapes, "a graph replayed at another batch size"
                self._compute()

            self.cudart.capturing.append(replay)
        else:
            self._compute()
        return True


class FakeEngine:
    def __init__(self, cudart: FakeCudart, latent: int, image: tuple[int, ...]) -> None:
        self.cudart, self.latent, self.image = cudart, latent, image
        self.tensors = {"z": ("INPUT", np.float32, (-1, latent)), "labels": ("INPUT", np.int64, (-1,)),
                        "images": ("OUTPUT", np.float32, (-1, *image))}
        self.num_io_tensors = 3
        self.contexts: list[FakeContext] = []

    def get_tensor_name(self, i: int) -> str:
        return list(self.tensors)[i]

    def get_tensor_mode(self, n: str) -> str:
        return self.tensors[n][0]

    def get_tensor_dtype(self, n: str) -> Any:
        return self.tensors[n][1]

    def get_tensor_shape(self, n: str) -> tuple[int, ...]:
        return self.tensors[n][2]

    def create_execution_context(self) -> FakeContext:
        self.contexts.append(FakeContext(self.cudart, self.image, self.latent))
        return self.contexts[-1]


@pytest.fixture
def fake_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeCudart, list[FakeEngine]]:
    """A cdcgan .plan sidecar (profile 2..8) and fakes of tensorrt and cuda.bindings.runtime."""
    import gantool.runtime.backends.trt as backend_trt
    from gantool.runtime.backends.ort import OrtBackend

    with OrtBackend(shipped_onnx("cdcgan")) as b:
        meta = b.generator_metadata().replace(precision="fp16")
    plan = tmp_path / "cdcgan.fp16.plan"
    plan.write_bytes(b"engine bytes")
    Path(f"{plan}.json").write_text(json.dumps({
        "sidecar_schema": SIDECAR_SCHEMA, "metadata": write_metadata(meta), "tensorrt_version": TRT_VERSION,
        "profile": {"min_batch": 2, "opt_batch": 4, "max_batch": 8}, "gpu": "fake", "compute_capability": "9.0"}))
    cudart = FakeCudart()
    engines: list[FakeEngine] = []

    class Runtime:
        def __init__(self, logger: Any) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> FakeEngine:
            engines.append(FakeEngine(cudart, meta.spec.latent_dim, meta.spec.image_shape))
            return engines[-1]

    def logger(severity: int) -> None:
        return None

    logger.WARNING = 2  # type: ignore[attr-defined]
    trt = SimpleNamespace(__version__=TRT_VERSION, Logger=logger, Runtime=Runtime, nptype=lambda t: t,
                          TensorIOMode=SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT"))
    monkeypatch.setattr(backend_trt, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(backend_trt, "cuda_device", lambda index=0: ("fake", "9.0"))
    bindings = ModuleType("cuda.bindings")
    bindings.runtime = cudart  # type: ignore[attr-defined]
    cuda = ModuleType("cuda")
    cuda.bindings = bindings  # type: ignore[attr-defined]
    for name, mod in (("cuda", cuda), ("cuda.bindings", bindings), ("cuda.bindings.runtime", cudart)):
        monkeypatch.setitem(sys.modules, name, mod)
    return plan, cudart, engines


def _feeds(batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"z": rng.standard_normal((batch, 128)).astype(np.float32), "labels": rng.integers(0, 10, batch)}


def _want(feeds: dict[str, np.ndarray]) -> np.ndarray:
    return np.broadcast_to((feeds["z"].sum(1) + feeds["labels"])[:, None, None, None].astype(np.float32),
                           (len(feeds["z"]), 1, 28, 28))


@pytest.mark.parametrize("graphs", [False, True])
def test_buffers_once_pinned_copies_and_results_that_stay(fake_gpu: Any, graphs: bool) -> None:
    plan, cudart, engines = fake_gpu
    with TrtBackend(plan, cuda_graphs=graphs) as b:
        ctx = engines[0].contexts[0]
        assert len(cudart.device) == len(cudart.pinned) == 3 and ctx.address_sets == 3  # one each, bound once
        sizes = sorted(len(cudart.buffers[p]) for p in cudart.device)
        assert sizes == sorted([8 * 128 * 4, 8 * 8, 8 * 28 * 28 * 4])  # the profile's max batch, 8
        results = []
        for i, batch in enumerate([2, 5, 8, 5, 2, 8]):
            feeds = _feeds(batch, i)
            got = b.infer(feeds)
            assert np.array_equal(got, _want(feeds)) and b.last_gpu_ms == 0.25
            results.append((got, _want(feeds)))
        for got, want in results:  # earlier results are copies: later calls reused the pinned buffers
            assert np.array_equal(got, want)
        assert len(cudart.device) == 3 and ctx.address_sets == 3  # no buffer grew, no address moved
        if graphs:  # each batch size captured once (one run to apply the shapes, one recorded), then replayed
            assert len(cudart.graphs) == 3 and ctx.executed == 3 * 2 and cudart.launches == 6
        else:
            assert not cudart.graphs and ctx.executed == 6 and cudart.launches == 0
    assert not cudart.device and not cudart.pinned and not cudart.events and not cudart.graphs
    assert cudart.streams == 0


def test_batches_outside_the_profile_are_one_line(fake_gpu: Any) -> None:
    plan, _, _ = fake_gpu
    with TrtBackend(plan) as b:
        with pytest.raises(GantoolError, match=r"batch 1 is outside its TensorRT profile \(batch 2\.\.8\)"):
            b.infer(_feeds(1, 0))
        with pytest.raises(GantoolError, match="batch 9 is above its TensorRT profile's maximum 8"):
            b.infer(_feeds(9, 0))
        feeds = _feeds(19, 3)  # what Generator does with a large batch: pieces within the profile
        assert np.array_equal(infer_split(b, feeds), _want(feeds))
