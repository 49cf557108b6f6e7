"""ONNX Runtime: CPU, and the CUDA / TensorRT execution providers of onnxruntime-gpu."""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Mapping

import numpy as np

from gantool.contract import IMAGES, GeneratorMetadata, TensorSpec
from gantool.errors import GantoolError
from gantool.paths import cache_dir
from gantool.runtime.backends.base import Backend, ModelLoadError
from gantool.runtime.ort import import_onnxruntime

log = logging.getLogger(__name__)

# Large CPU batches run in pieces whose activations stay in cache. Measured on the 2-core dev machine
# (2 MiB L2 per core), per 256 images with lowered graphs: cdcgan 22.0 ms as 4 x 64 against 26.2 ms as
# one batch; dcgan (64x64) 159.8 ms as 16 x 16 against 214.2 ms. Both bests hold about 1M activation
# values (cdcgan's largest tensor is 12.5k values per sample, dcgan's 65.5k); MLPs stay whole.
CHUNK_VALUES = 2 ** 20
ORT_TRT_MAX_BATCH = 1024  # the TensorRT provider's profile: batch 1..1024, larger requests are split
# ort-trt's providers, in ONNX Runtime's priority order: nodes TensorRT does not take run on CUDA, not the CPU
ORT_TRT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(bfloat16)": "bfloat16",
             "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(uint8)": "uint8"}


def cpu_chunk(peak_activation_values: int) -> int | None:
    """The piece size for ONNX Runtime on CPU (a power of two), or None for files without the figure."""
    if peak_activation_values <= 0:
        return None
    return 2 ** max(0, round(math.log2(CHUNK_VALUES / peak_activation_values)))


def available_providers() -> list[str]:
    return list(import_onnxruntime().get_available_providers())


def trt_provider_options(cache: str | os.PathLike, names: dict[str, int], max_batch: int) -> dict[str, Any]:
    """Engine caching and explicit profile shapes for ORT's TensorRT provider (names: input -> trailing dim)."""

    def shapes(b: int) -> str:
        return ",".join(f"{n}:{b}x{d}" if d else f"{n}:{b}" for n, d in names.items())

    return {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache), "trt_timing_cache_enable": True,
            "trt_profile_min_shapes": shapes(1), "trt_profile_opt_shapes": shapes(max(1, max_batch // 4)),
            "trt_profile_max_shapes": shapes(max_batch)}


def tensor_specs(args: list[Any]) -> list[TensorSpec]:
    """ORT's NodeArgs as contract TensorSpecs."""
    return [TensorSpec(a.name, ORT_TYPES.get(a.type, a.type), tuple(a.shape)) for a in args]


class OrtBackend(Backend):
    """An InferenceSession tuned for latency on the CPU: full graph optimisation, memory pattern, a
    settable thread count, the single output fetched by name, large batches in cache-sized chunks."""

    engine = "ort"
    provider = "CPUExecutionProvider"
    suffixes: tuple[str, ...] = (".onnx", ".ort")  # .ort: the ORT format (gantool export --format ort), metadata included

    def __init__(self, model: str | os.PathLike | bytes, threads: int | None = None, name: str | None = None,
                 provider_options: dict[str, Any] | None = None) -> None:
        super().__init__(model, threads, name)
        self.provider_options = provider_options or {}
        self.session: Any = None
        self._run: Any = None  # the session's run method, see _activate()

    def _options(self) -> Any:
        ort = import_onnxruntime()
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.enable_mem_pattern = True
        so.log_severity_level = 3
        if self.threads is not None:
            so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
        return so

    def _providers(self) -> list[Any]:
        """What the session starts on: this engine's provider, with the CPU as the fallback."""
        if self.provider == "CPUExecutionProvider":
            return [self.provider]
        return [(self.provider, self.provider_options), "CPUExecutionProvider"]

    def _activate(self) -> None:
        ort = import_onnxruntime()
        if self.provider not in ort.get_available_providers():
            raise GantoolError(f"engine {self.engine} needs ONNX Runtime's {self.provider}, which this onnxruntime "
                               f"lacks (it has: {', '.join(ort.get_available_providers())}).",
                               note='the CUDA and TensorRT providers come with pip install "gantool[gpu]" '
                                    "(onnxruntime-gpu) on a machine with an NVIDIA GPU.")
        model = self.model if isinstance(self.model, bytes) else str(self.model)
        try:
            self.session = ort.InferenceSession(model, self._options(), providers=self._providers())
        except Exception as e:  # ORT raises its own exception types; keep one clear line
            raise ModelLoadError(f"ONNX Runtime could not load {self.source}: {str(e).splitlines()[0][:200]}") from None
        self._bind_run()

    def _bind_run(self) -> None:
        # InferenceSession.run re-checks feed names and ownership in Python on every call, then calls its
        # native session: ~2 us, 2% of cdcgan's batch-1 time (docs/benchmarks.md). On the CPU provider (no
        # fallback provider for the wrapper to retry on) we call the native method directly; the Generator
        # builds complete, checked feeds, and a missing input still fails cleanly in ORT. The bench's `ort`
        # engine makes this same call, and tests/runtime/test_ort.py fails loudly if onnxruntime drops it.
        native = getattr(self.session, "_sess", None)
        cpu_only = self.session.get_providers() == ["CPUExecutionProvider"]
        self._run = native.run if cpu_only and native is not None else self.session.run

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        run = self._run  # one read: a concurrent deactivate() cannot swap it mid-call
        if run is None:
            raise GantoolError(f"the {self.name} backend is not active; call activate() first.")
        return run([IMAGES], feeds, None)[0]

    def _deactivate(self) -> None:
        self.session = self._run = None

    def _metadata_props(self) -> Mapping[str, Any]:
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def graph_io(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        return tensor_specs(self.session.get_inputs()), tensor_specs(self.session.get_outputs())

    def _configure(self, meta: GeneratorMetadata) -> None:
        self.chunk = cpu_chunk(meta.peak_activation_values or 0)


class OrtCudaBackend(OrtBackend):
    """ORT's CUDA provider: whole batches on the GPU (no CPU chunking). Where onnxruntime-gpu lists the
    provider but the session did not get it (no usable GPU or CUDA libraries: ONNX Runtime then falls
    back to the CPU), the backend says so: it is labelled `ort` and chunks as the CPU backend does."""

    suffixes = (".onnx",)  # the ORT format is for ONNX Runtime Mobile on the CPU: not tried on a GPU
    engine = "ort-cuda"
    provider = "CUDAExecutionProvider"

    @property
    def on_cpu(self) -> bool:
        """Whether the session runs on the CPU alone: what it got, not what onnxruntime offers."""
        return self.session is not None and self.provider not in self.session.get_providers()

    def _activate(self) -> None:
        super()._activate()
        if self.on_cpu:
            log.warning("ONNX Runtime could not start its %s for %s; running on the CPU (engine ort)",
                        self.provider, self.source)
            if self.name == self.engine:
                self.name = "ort"
            self.engine = "ort"

    def _configure(self, meta: GeneratorMetadata) -> None:
        if self.on_cpu:
            super()._configure(meta)


class OrtTrtBackend(OrtBackend):
    """ORT's TensorRT provider with an explicit batch profile and a persistent engine cache. The session
    starts on the CPU provider, reads the metadata the profile needs, then moves onto TensorRT."""

    suffixes = (".onnx",)  # TensorRT parses ONNX protobuf
    engine = "ort-trt"
    provider = "TensorrtExecutionProvider"

    def _providers(self) -> list[Any]:
        return ["CPUExecutionProvider"]  # until _configure() knows the profile (its shapes are in the metadata)

    def _configure(self, meta: GeneratorMetadata) -> None:
        self.max_batch = ORT_TRT_MAX_BATCH
        options = trt_provider_options(cache_dir() / "ort-trt", meta.contract.input_dims(), ORT_TRT_MAX_BATCH)
        self.session.set_providers(list(ORT_TRT_PROVIDERS), [options, {}, {}])
        self._bind_run()
