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


def test_a_job_without_a_rendezvous_is_a_user_error_and_only_the_first_rank_of_a_node_prints(monkeypatch, capsys,
                                                                                             tmp_path):
    from gantool.cli import main
    from gantool.train.distributed import start

    for name in ("MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")):  # as a half-made launcher leaves it
        monkeypatch.setenv(name, value)
    with pytest.raises(GantoolError, match="could not start .*MASTER_ADDR.* Note: start it with torchrun"):
        start(World(rank=0, size=2), "cpu")
    missing = ["train", "--model", "cgan", "--data-dir", str(tmp_path / "nowhere"), "-o", str(tmp_path / "run")]
    monkeypatch.setenv("LOCAL_RANK", "1")  # another rank of the node: the same failure, exit only
    assert main(missing) == 1 and capsys.readouterr().err == ""
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert main(missing) == 1 and capsys.readouterr().err.startswith("gantool: error: data directory")
