"""torchrun's environment and the data shards, without starting a job (tests/train/test_resume.py runs a
2-process gloo job end to end: training, SIGKILL, exact resume, export)."""

from __future__ import annotations

import pytest
import torch

from gantool.errors import GantoolError
from gantool.train.distributed import World, world_from_env


def test_torchrun_environment_is_read_and_checked(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert world_from_env() == World()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    w = world_from_env()
    assert (w.rank, w.size, w.active, w.is_main) == (1, 2, True, False)
    assert w.rank_seed(7) != World().rank_seed(7)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(GantoolError, match="inconsistent"):
        world_from_env()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(GantoolError, match="malformed"):
        world_from_env()


def test_the_ranks_shards_of_a_batch_are_disjoint_and_make_up_the_batch():
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    for size in (1, 2, 4):
        for b in range(3):
            shards = [World(rank=r, size=size).shard(order, b, 16) for r in range(size)]
            together = torch.cat(shards)
            assert torch.equal(together, order[b * size * 16:(b + 1) * size * 16])
            assert len(set(together.tolist())) == size * 16
    assert torch.equal(World().shard(order, 2, 16), order[32:48])  # one process: the plain batches
