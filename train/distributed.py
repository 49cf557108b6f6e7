"""Data-parallel training under torchrun: DistributedDataParallel over gloo (CPU) or NCCL (GPUs).

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK (and the rendezvous) for every process; gantool reads
them here and nowhere else. Each rank trains on its own slice of every global batch of the run's
one seeded permutation and draws its own noise; gradients are averaged by DDP; rank 0 alone
writes the checkpoint, the log and the grids. BatchNorm keeps per-rank batch statistics
(forward_sync_buffers=False): training-mode BatchNorm normalises with the batch it sees, as DCGAN
does, and the running averages, which only eval-mode sampling reads, are rank 0's.
docs/training.md says why not SyncBatchNorm.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gantool.errors import GantoolError

RANK_SEED_STRIDE = 1 << 32  # rank r's RNG streams start at seed + r * 2**32: apart from every rank-0 seed


@dataclass(frozen=True)
class World:
    """This process's place in the job; World() is a plain single-process run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rank_seed(self, seed: int) -> int:
        """The seed of this rank's own random streams (dropout, z, GP), rank 0's being the run's seed."""
        return seed + self.rank * RANK_SEED_STRIDE

    # --- collectives (no-ops in a single process) ------------------------------------------------
    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of a small tensor (losses, scores): what the log shows."""
        if not self.active:
            return values
        out = _for_backend(values.detach().float().clone())
        torch.distributed.all_reduce(out)
        return out / self.size

    def total(self, value: float) -> float:
        if not self.active:
            return value
        t = _for_backend(torch.tensor([value], dtype=torch.float64))
        torch.distributed.all_reduce(t)
        return float(t)

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one: a stop decision all ranks must share."""
        if not self.active:
            return flag
        t = _for_backend(torch.tensor([int(flag)]))
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t)

    def shard(self, order: torch.Tensor, batch: int, size: int) -> torch.Tensor:
        """This rank's `size` indices of global batch `batch` (world size x size images) of one epoch's
        order: the ranks' shards of a batch are disjoint, and together they are the batch."""
        start = (batch * self.size + self.rank) * size
        return order[start:start + size]

    def barrier(self) -> None:
        """Wait for every rank (rank 0's last checkpoint written) before the group is torn down: a rank
        that leaves while another still works can make gloo abort that one."""
        if self.active:
            torch.distributed.barrier()

    def gather(self, state: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's copy of a same-sized tensor (an RNG state), in rank order, on the CPU."""
        if not self.active:
            return [state]
        own = _for_backend(state.contiguous())
        parts = [torch.empty_like(own) for _ in range(self.size)]
        torch.distributed.all_gather(parts, own)
        return [p.cpu() for p in parts]


def _for_backend(t: torch.Tensor) -> torch.Tensor:
    """NCCL reduces CUDA tensors only; gloo takes them where they are."""
    if torch.distributed.get_backend() == "nccl":
        return t.to(f"cuda:{torch.cuda.current_device()}")
    return t


def check_world(ckpt: dict[str, Any], world: World, source: str) -> None:
    """An exact resume needs the job size the run was trained with (every rank's RNG streams)."""
    from gantool.errors import CheckpointError

    size = ckpt.get("world_size", 1)
    if size != world.size:
        how = "in one process (without torchrun)" if size == 1 else f"with {size} processes in all"
        raise CheckpointError(f"{source}: the run was trained {how}, but this job has {world.size}; an exact "
                              f"resume needs the same number.", note=f"resume it {how}; eval and export read it in "
                                                                     f"any number.")


def world_from_env() -> World:
    """The job torchrun started, or World() when it did not (no WORLD_SIZE in the environment)."""
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    raw = {n: os.environ.get(n) for n in names}
    if raw["WORLD_SIZE"] is None:
        return World()
    try:
        rank, size, local = (int(raw[n] or "0") for n in names)
    except ValueError:
        raise GantoolError(f"torchrun's environment is malformed ({raw}); RANK, WORLD_SIZE and LOCAL_RANK must be "
                           f"integers.", note="start distributed runs with torchrun, which sets them.") from None
    if not (size >= 1 and 0 <= rank < size and local >= 0):
        raise GantoolError(f"torchrun's environment is inconsistent ({raw}); expected 0 <= RANK < WORLD_SIZE.")
    return World(rank=rank, size=size, local_rank=local)


def start(world: World, device: str) -> str:
    """Join the process group (gloo on CPU, NCCL on GPUs); returns the device this rank computes on."""
    if not world.active:
        return device
    import torch.distributed as dist

    if device == "cuda":
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world.local_rank + 1))
        if torch.cuda.device_count() < per_node:  # every rank of the node sees it, so the node says it once
            raise GantoolError(f"this node runs {per_node} processes but {torch.cuda.device_count()} GPUs are "
                               f"visible; each process needs its own GPU.",
                               note="pass --nproc-per-node no larger than the GPUs per node.")
        torch.cuda.set_device(world.local_rank)
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
        except (ValueError, RuntimeError) as e:  # no MASTER_ADDR, an unreachable rendezvous, ...
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise GantoolError(f"the distributed job could not start ({first}).",
                               note="start it with torchrun, which sets RANK, WORLD_SIZE, MASTER_ADDR and "
                                    "MASTER_PORT (docs/training.md#scale-out-torchrun).") from None
    if not world.is_main:  # one voice: rank 0 prints the progress and the notes
        logging.getLogger("gantool").setLevel(logging.WARNING)
    return device


def stop(world: World) -> None:
    if world.active and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def wrap(module: nn.Module, world: World, device: str) -> nn.Module:
    """The module whose forward passes train (DDP in a job, the module itself alone). Its state_dict is
    still read from the plain module, so a checkpoint of an N-process run loads in one process."""
    if not world.active:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [world.local_rank] if device == "cuda" else None
    # channels_last weights with one input channel have two valid stride layouts; DDP notes the mismatch
    # for each such tiny tensor, which changes nothing but a copy of a few bytes
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    # buffers: equal at the start (init sync), then each rank's own BatchNorm statistics (module docstring)
    return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)


def no_sync(module: nn.Module) -> Any:
    """A backward whose gradients for `module` are thrown away (D's in G's step) need not be averaged."""
    import contextlib

    sync = getattr(module, "no_sync", None)
    return sync() if sync is not None else contextlib.nullcontext()
