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
    roof = r["roofline"]  # cdcgan's fp32 weights: 3.8 MiB, half of them in its first Gemm
    assert 3.5 * 2 ** 20 < roof["weight_bytes"] < 4.2 * 2 ** 20 and roof["weight_stream_gb_per_s"] > 1
    assert roof["batch1_weight_stream_ms"] == pytest.approx(roof["weight_bytes"] / roof["weight_stream_gb_per_s"] / 1e6)
    assert "a batch-1 MatMul streams at" in text
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
    assert r["machine"]["cpu_model"] and isinstance(r["machine"]["cpu_flags"], list) and "machine: " in text
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_bench_warmup_and_duration_set_the_timed_seconds(tmp_path, capsys, monkeypatch):
    """--duration is the timed seconds per engine and batch, spread over the rounds (trtexec's --duration)."""
    monkeypatch.setattr(bench, "SETTLE_S", 0.0)
    out = tmp_path / "b.json"
    assert main(["bench", "--model", "cdcgan", "--engine", "ort", "--batch", "1", "--rounds", "3", "--threads", "1",
                 "--warmup", "0", "--duration", "0.3", "--no-cold-start", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    r = json.loads(out.read_text())
    assert r["warmup_s"] == 0 and r["round_s"] == pytest.approx(0.1)
    s, = r["stats"]
    assert len(s["round_p50_ms"]) == 3 and 0.8 * 0.3 <= s["runs"] * s["mean_ms"] / 1e3 <= 0.3 + 0.1
    assert "warm-up 0 s, 0.1 s timed per round" in text
    assert main(["bench", "--model", "cdcgan", "--duration", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--duration" in err


def test_gpu_time_is_reported_beside_host_latency(monkeypatch):
    """An engine that reports a GPU time per run (trt's CUDA events) gets its median beside its host latency."""
    from gantool.benchmarks.engines import Engine
    from gantool.runtime.select import file_metadata

    monkeypatch.setattr(bench, "SETTLE_S", 0.0)
    import itertools

    gpu_times = itertools.cycle([0.5, 0.1, 0.3])
    engines = {"trt": Engine("trt", lambda feeds: None, gpu_ms=lambda: next(gpu_times)),
               "ort": Engine("ort", lambda feeds: None)}
    stats = bench.measure(engines, file_metadata(shipped_onnx("cdcgan")).spec, [1], rounds=2, warmup_s=0.0, round_s=0.01)
    by = {s.engine: s for s in stats}
    assert by["trt"].gpu_p50_ms == pytest.approx(0.3, abs=0.2) and by["ort"].gpu_p50_ms is None
    res = bench.BenchResult(model="cdcgan", threads=1, batches=[1], stats=stats,
                            roofline={"matmul_gflops": {}}, warmup_s=0.0, round_s=0.01)
    assert "trt batch 1: GPU time p50" in bench.table(res)


def test_cuda_graph_needs_the_trt_engine(capsys):
    assert main(["bench", "--model", "cdcgan", "--engine", "ort", "--cuda-graph", "--no-cold-start"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--cuda-graph applies to the trt engine" in err


def test_bench_bad_options_are_one_line(capsys):
    for args, message in ((["--engine", "tensorflow"], "unknown engine 'tensorflow'"),
                          (["--batch", "1,x"], "not a comma-separated list"),
                          (["--batch", "0"], "must be an integer in 1..65536"),
                          (["--batch", str(10 ** 9)], "must be an integer in 1..65536"),
                          (["--engine", ","], "names no engine"),
                          (["--engine", "trt"], "no requested engine can run here: trt: TensorRT is not installed")):
        assert main(["bench", "--model", "cdcgan", "--no-cold-start", *args]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err


def test_ort_plain_runs_the_unlowered_export_with_the_same_numbers(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import onnx

    from gantool.benchmarks.engines import Skip, Sources, feeds_for, make_engine, plain_graph
    from gantool.runtime import Generator

    monkeypatch.setenv("GANTOOL_CACHE", str(tmp_path))
    src = Sources(model="cdcgan", onnx={"fp32": shipped_onnx("cdcgan")})
    ops = [n.op_type for n in onnx.load(str(plain_graph(src))).graph.node]
    assert ops.count("ConvTranspose") == 4 and "DepthToSpace" not in ops  # torch's graph, not lowered
    with Generator.load("cdcgan") as g:
        feeds = feeds_for(g.spec, 3)
    plain, lowered = make_engine("ort-plain", src, 1), make_engine("ort", src, 1)
    np.testing.assert_allclose(plain.run(feeds), lowered.run(feeds), atol=1e-5)
    with pytest.raises(Skip, match="needs PyTorch weights"):  # an exported file has no weights to re-export
        make_engine("ort-plain", Sources(model=str(shipped_onnx("cdcgan")), onnx={"fp32": shipped_onnx("cdcgan")}), 1)


def test_ort_int8u_runs_the_familys_u8_file_and_says_where_there_is_none(tmp_path):
    import shutil

    from gantool.benchmarks.engines import Skip, Sources, feeds_for, make_engine
    from gantool.runtime import Generator

    src = Sources(model="cgan", onnx={"fp32": shipped_onnx("cgan")})
    with Generator.load("cgan") as g:
        feeds = feeds_for(g.spec, 4)
        fp32 = g.backend.infer(feeds)
    u8 = make_engine("ort-int8u", src, 1)
    got = u8.run(feeds)
    assert got.shape == fp32.shape and 0 < np.abs(got - fp32).max() < 1  # quantized: close, not equal
    u8.close()
    alone = tmp_path / "cgan.onnx"
    shutil.copy(shipped_onnx("cgan"), alone)
    with pytest.raises(Skip, match="no cgan.int8u.onnx beside cgan.onnx"):
        make_engine("ort-int8u", Sources(model=str(alone), onnx={"fp32": alone}), 1)


def test_engine_comparison_leaves_out_the_runtimes_own_bare_session():
    res = bench.BenchResult(model="m", threads=1, batches=[1])
    res.stats = [bench.Stats(e, 1, 1, t, t, t, t, t, 0.0, 1e3 / t, round_p50_ms=[t])
                 for e, t in (("runtime", 1.06), ("ort", 1.0), ("openvino", 2.0), ("ort-plain", 1.2))]
    d = bench.derived_figures(res)
    assert d["runtime_over_best_other_at_batch_1"] == pytest.approx(1.06)  # against bare ORT on the same file
    assert d["runtime_over_best_other_engine_at_batch_1"] == pytest.approx(1.06 / 1.2)  # against other engines


def test_bench_runs_in_a_runtime_only_install():
    """No torch, no onnx: FLOPs come from the file's metadata; what needs onnx is left out with a note."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "onnx", "onnxscript", "onnxslim", "safetensors"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        from gantool.benchmarks import bench
        bench.ROUND_S = bench.WARMUP_S = 0.02
        bench.SETTLE_S = 0.0
        from gantool.cli import main
        sys.exit(main(["bench", "--model", "cgan", "--engine", "runtime,ort,torch", "--batch", "1,4", "--rounds", "1",
                       "--threads", "1", "--no-cold-start"]))
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "MFLOP/sample" in p.stdout and "skipped torch: PyTorch is not installed" in p.stdout
    assert "runtime_overhead_batch1" in p.stdout and "Traceback" not in p.stderr
