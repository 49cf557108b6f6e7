"""`gantool bench` and the roofline: real measurements on tiny budgets (figures are not asserted)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gantool.benchmarks import bench
from gantool.export.flops import onnx_flops_per_sample
from gantool.cli import main
from gantool.paths import shipped_onnx


@pytest.mark.parametrize("name", ["cdcgan", "gan"])
def test_onnx_flop_count_matches_torchs_counter(name):
    pytest.importorskip("torch")
    from gantool.train.zoo import MNIST_INFO, build_spec, generator_flops

    counted, reference = onnx_flops_per_sample(shipped_onnx(name)), generator_flops(build_spec(name, MNIST_INFO))
    assert abs(counted - reference) / reference < 0.02


def test_bench_cli_runs_engines_side_by_side_and_skips_unavailable_ones(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "ROUND_S", 0.02)
    monkeypatch.setattr(bench, "WARMUP_S", 0.02)
    monkeypatch.setattr(bench, "SETTLE_S", 0.0)
    out, plot = tmp_path / "b.json", tmp_path / "b.png"
    code = main(["bench", "--model", "cdcgan", "--engine", "runtime,ort,torch,trt,ort-cuda", "--batch", "1,4",
                 "--rounds", "2", "--threads", "1", "--json", str(out), "-o", str(plot)])
    text = capsys.readouterr().out
    assert code == 0, text
    r = json.loads(out.read_text())
    assert {(s["engine"], s["batch"]) for s in r["stats"]} == {(e, b) for e in ("runtime", "ort", "torch") for b in (1, 4)}
    for s in r["stats"]:
        assert s["runs"] >= 2 and 0 < s["min_ms"] <= s["p50_ms"] <= s["p99_ms"] and s["images_per_s"] > 0
        assert s["peak_rss_mb"] > 10 and 0 < s["share_of_peak"] < 1.5
        assert len(s["round_p50_ms"]) == 2 and s["min_ms"] <= min(s["round_p50_ms"])  # one p50 per round
    assert set(r["skipped"]) == {"trt", "ort-cuda"} and "not installed" in r["skipped"]["trt"]
    assert r["cold_start"]["runtime"]["cold_start_s"] > 0 and r["roofline"]["flops_per_sample"] > 1e6
    d = r["derived"]
    assert {"runtime_overhead_batch1", "torch_over_ort_batch1", "ort_batch1_over_floor"} <= set(d)
    rounds = {s["engine"]: s["round_p50_ms"] for s in r["stats"] if s["batch"] == 1}
    floor = r["roofline"]["batch1_floor_ms"]
    by_round = [x / floor for x in rounds["runtime"]]
    assert d["runtime_batch1_over_floor_rounds_min_median_max"] == pytest.approx(
        [min(by_round), sum(by_round) / 2, max(by_round)], abs=2e-3)  # two rounds: the median is their mean
    assert d["runtime_overhead_batch1_median_of_rounds"] == pytest.approx(
        np.mean([a / b - 1 for a, b in zip(rounds["runtime"], rounds["ort"])]))
    assert "skipped trt:" in text and "cold start ort:" in text
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_bench_bad_options_are_one_line(capsys):
    for args, message in ((["--engine", "tensorflow"], "unknown engine 'tensorflow'"),
                          (["--batch", "1,x"], "not a comma-separated list"),
                          (["--batch", "0"], "must be an integer >= 1")):
        assert main(["bench", "--model", "cdcgan", "--no-cold-start", *args]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
