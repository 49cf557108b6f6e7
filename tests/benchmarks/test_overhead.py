"""benchmarks/overhead.py: every way an app asks for images, against a bare session.run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from click.testing import CliRunner

from gantool.benchmarks import bench, overhead


def test_overhead_reports_each_sampling_path_against_bare_ort(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "ROUND_S", 0.02)
    monkeypatch.setattr(bench, "WARMUP_S", 0.02)
    monkeypatch.setattr(bench, "SETTLE_S", 0.0)
    out = tmp_path / "o.json"
    r = CliRunner().invoke(overhead.main, ["--model", "cdcgan", "--model", "gan", "--batch", "1,3", "--rounds", "2",
                                           "--threads", "1", "--json", str(out)])
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())["models"]
    for model in ("cdcgan", "gan"):
        rows = report[model]["rows"]
        assert {(x["engine"], x["batch"]) for x in rows} == {
            (e, b) for e in ("ort", "ort public run", "uint8 only", "runtime z=", "runtime seed=None", "runtime seed=k")
            for b in (1, 3)}
        assert all(x["p50_ms"] > 0 for x in rows)
        rounds = {(st["engine"], st["batch"]): np.array(st["round_p50_ms"]) for st in report[model]["stats"]}
        for x in rows:  # each path against the bare session, round by round (the same machine state)
            mine, base = rounds[x["engine"], x["batch"]], rounds["ort", x["batch"]]
            assert len(mine) == 2 and x["overhead"] == pytest.approx(float(np.median(mine / base - 1)))
            assert x["overhead_us"] == pytest.approx(float(np.median(mine - base)) * 1e3)
    assert "runtime seed=k" in r.output
