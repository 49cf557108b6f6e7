"""Which graph form GPU engines run (#19, defect 4): the unlowered graph by default, both where asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantool.benchmarks import engines
from gantool.benchmarks.bench import parse_graphs
from gantool.benchmarks.engines import Skip, Sources, bench_label, bench_runs, make_engine, split_label
from gantool.errors import GantoolError
from gantool.export.trt import DEFAULT_GPU_GRAPH, export_options
from gantool.paths import shipped_onnx


def test_gpu_engines_default_to_the_plain_graph_and_cpu_engines_keep_theirs():
    assert DEFAULT_GPU_GRAPH == "plain"
    assert export_options("plain") == {"lower": False} and export_options("lowered") == {"lower": True}
    with pytest.raises(GantoolError, match="allowed: plain, lowered"):
        export_options("phases")
    assert split_label("trt") == ("trt", "plain") and split_label("ort-cuda-lowered") == ("ort-cuda", "lowered")
    assert split_label("ort") == ("ort", None) and split_label("ort-plain") == ("ort-plain", None)
    assert split_label("ort-trt-lowered") == ("ort-trt", "lowered")
    for label in ("trt", "trt-lowered", "ort-cuda", "ort-trt-lowered", "runtime"):
        assert bench_label(*split_label(label)) == label
    assert bench_runs(["runtime", "trt", "ort-cuda"], ["plain"]) == ["runtime", "trt", "ort-cuda"]
    assert bench_runs(["ort", "trt", "ort-trt"], ["plain", "lowered"]) == ["ort", "trt", "trt-lowered", "ort-trt",
                                                                          "ort-trt-lowered"]
    assert bench_runs(["trt"], ["lowered"]) == ["trt-lowered"]
    assert parse_graphs("lowered, plain,lowered") == ["lowered", "plain"]
    for bad in ("", "phases", "plain,x"):
        with pytest.raises(GantoolError, match="allowed: a comma-separated list of plain, lowered"):
            parse_graphs(bad)


@pytest.fixture
def opened(monkeypatch, tmp_path):
    """make_engine with the backends and the re-export faked: records (file, engine, label) opened."""
    calls: list[tuple[str, str, str]] = []
    exports: list[tuple[str, dict]] = []

    def reexport(src, tag, **options):
        exports.append((tag, options))
        return tmp_path / f"{tag}.onnx"

    monkeypatch.setattr(engines, "_reexport", reexport)
    monkeypatch.setattr(engines, "_open", lambda path, engine, threads, label=None: calls.append(
        (Path(path).name, engine, label or engine)))
    monkeypatch.setattr(engines, "_make_variant", lambda src, precision, base=None: Path(
        f"{(base or src.onnx['fp32']).stem}.{precision}.onnx"))
    return calls, exports


def test_ort_gpu_engines_open_the_plain_graph_unless_asked_for_the_lowered(opened):
    calls, exports = opened
    src = Sources(model="cdcgan", onnx={"fp32": shipped_onnx("cdcgan")}, form="lowered")
    for label in ("ort-cuda", "ort-cuda-lowered", "ort-trt", "ort-trt-lowered", "ort"):
        make_engine(label, src, 1)
    assert calls == [("plain.onnx", "ort-cuda", "ort-cuda"), ("cdcgan.onnx", "ort-cuda", "ort-cuda-lowered"),
                     ("plain.fp16.onnx", "ort-trt", "ort-trt"), ("cdcgan.fp16.onnx", "ort-trt", "ort-trt-lowered"),
                     ("cdcgan.onnx", "ort", "ort")]
    assert exports == [("plain", {"lower": False}), ("plain", {"lower": False})]


def test_an_onnx_of_another_form_is_skipped_with_the_reason(opened, monkeypatch):
    src = Sources(model=str(shipped_onnx("cdcgan")), onnx={"fp32": shipped_onnx("cdcgan")}, form="lowered")
    monkeypatch.setattr(engines, "_reexport", lambda src, tag, **options: None)  # an .onnx has no weights
    with pytest.raises(Skip, match=r"export the plain graph; .*cdcgan.onnx is a lowered graph \(bench it with "
                                   r"--graph lowered\)"):
        make_engine("ort-cuda", src, 1)
    make_engine("ort-cuda-lowered", src, 1)
    assert opened[0] == [("cdcgan.onnx", "ort-cuda", "ort-cuda-lowered")]
