"""What this CPU can do, read from /proc/cpuinfo at run time: the machines gantool runs on change
(AMD EPYC with AVX-512 BF16, Intel Xeon with AMX, ...), so choices of precision are made here, not assumed.
Torch-free: training, the runtime and the benchmarks all read it."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import lru_cache

NOTABLE_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_bf16", "amx_int8",
                 "amx_tile")
BF16_MATRIX_FLAGS = ("amx_bf16",)  # tile units: ~6x fp32 matmul throughput (2,004 against 314 GFLOP/s seen here)
BF16_VECTOR_FLAGS = ("avx512_bf16",)  # dot-product instructions on the AVX-512 units


@dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: frozenset[str]
    cpus: int

    @property
    def notable_flags(self) -> list[str]:
        """The flags that decide precision and kernels, in a fixed order: what results record."""
        return [f for f in NOTABLE_FLAGS if f in self.flags]

    @property
    def bf16_units(self) -> str | None:
        """'amx' (bf16 matrix tiles), 'avx512' (bf16 dot-product instructions) or None (bf16 is emulated)."""
        if any(f in self.flags for f in BF16_MATRIX_FLAGS):
            return "amx"
        if any(f in self.flags for f in BF16_VECTOR_FLAGS):
            return "avx512"
        return None


@lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """The first processor's model name and flags (every core of a machine reports the same)."""
    model, flags = platform.processor() or platform.machine(), frozenset[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = frozenset(value.split())
                    break
    except OSError:  # not Linux: no flags known, so nothing is assumed
        pass
    return CpuInfo(model=model, flags=flags, cpus=os.cpu_count() or 1)
