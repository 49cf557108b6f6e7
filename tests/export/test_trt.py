"""TensorRT: no removed API anywhere in the engine code, a clear exit 2 without TensorRT, and (on a GPU
with TensorRT) build, load, inference and parity."""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from gantool.cli import main

ROOT = Path(__file__).resolve().parents[2]
ENGINE_CODE = [ROOT / "export" / "trt.py", ROOT / "runtime" / "backends" / "trt.py"]
# Removed in TensorRT 10/11 (weak typing, implicit batch, binding indices, the old builder and executor).
REMOVED = {"FP16", "INT8", "BF16", "FP8", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
           "platform_has_fast_fp16", "platform_has_fast_int8", "build_engine", "execute_async_v2", "execute_v2",
           "max_workspace_size", "get_binding_index", "get_binding_shape", "get_binding_dtype", "binding_is_input",
           "num_bindings", "set_binding_shape", "max_batch_size", "EXPLICIT_BATCH", "int8_calibrator"}
HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def names_used(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    used |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used |= {k.arg for n in ast.walk(tree) if isinstance(n, ast.Call) for k in n.keywords if k.arg}
    return used


@pytest.mark.parametrize("path", ENGINE_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_code_uses_no_removed_tensorrt_api(path):
    assert not names_used(path) & REMOVED


def test_the_ast_check_catches_a_removed_api(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(config, trt, ctx):\n    config.set_flag(trt.BuilderFlag.FP16)\n    ctx.execute_async_v2([], 0)\n")
    assert names_used(bad) & REMOVED == {"FP16", "execute_async_v2"}


def test_engine_modules_import_without_tensorrt():
    import gantool.export.trt  # noqa: F401
    import gantool.runtime.backends.trt  # noqa: F401


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here; this checks the message when it is not")
def test_build_without_tensorrt_exits_2_with_an_install_hint(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["build", "--engine", "trt", "--model", "cdcgan"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "TensorRT is not installed" in err and 'pip install "gantool[trt]"' in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gpu
@pytest.mark.trt
def test_build_load_infer_and_parity_on_gpu(tmp_path, monkeypatch):
    from gantool.export.trt import Profile, run_build
    from gantool.runtime.backends.trt import TrtBackend

    monkeypatch.chdir(tmp_path)
    plan, sidecar, report = run_build("cdcgan", None, "fp16", Profile(1, 16, 64), str(tmp_path / "cache"))
    assert plan.exists() and report.passed and {c.batch for c in report.comparisons} >= {1, 7, 64, 1024}
    from gantool.contract import read_metadata
    from gantool.runtime.backends.trt import read_sidecar

    side = read_sidecar(plan)
    meta = read_metadata(side["metadata"], str(plan))
    assert meta.spec.arch == "cdcgan" and meta.precision == "fp16" and side["profile"]["max_batch"] == 64
    from gantool.export.trt import keyed_cache_path

    cache = keyed_cache_path(tmp_path / "cache", side["tensorrt_version"], side["compute_capability"])
    assert cache.stat().st_size > 0  # the timing cache is written for the next build, keyed by TensorRT and GPU
    with TrtBackend(plan) as b:  # labels reach every sample of a batch (NVIDIA/TensorRT#3004)
        z = np.full((10, 128), 0.1, np.float32)  # one z, ten labels: ten different images
        out = b.infer({"z": z, "labels": np.arange(10, dtype=np.int64)})
    assert len({out[i].tobytes() for i in range(10)}) == 10


@pytest.mark.gpu
@pytest.mark.trt
def test_cuda_graphs_give_the_plain_enqueues_results_and_events_time_the_gpu(tmp_path, monkeypatch):
    """Per batch size, a captured CUDA graph replays with each call's inputs: the same outputs as plain
    execute_async_v3, at every batch size, in any order; each call reports a GPU time."""
    from gantool.export.trt import Profile, run_build
    from gantool.runtime.backends.trt import TrtBackend

    monkeypatch.chdir(tmp_path)
    plan, _, _ = run_build("cdcgan", None, "fp16", Profile(1, 16, 64), str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    calls = [(b, rng.uniform(-1, 1, (b, 128)).astype(np.float32), rng.integers(0, 10, b)) for b in (1, 16, 64, 16, 1, 7)]
    with TrtBackend(plan) as plain, TrtBackend(plan, cuda_graphs=True) as graphed:
        for b, z, y in calls:
            want = plain.infer({"z": z, "labels": y})
            got = graphed.infer({"z": z, "labels": y})
            assert np.array_equal(got, want), f"batch {b}"
            assert plain.last_gpu_ms is not None and 0 < graphed.last_gpu_ms < 1000
        assert sorted(graphed._graphs) == [1, 7, 16, 64]


@pytest.mark.gpu
@pytest.mark.trt
def test_the_class_weight_graph_builds_with_its_input_in_the_profile(tmp_path, monkeypatch):
    """NAME.mix.onnx: the profile covers class_weights (batch, 10); parity includes the mixture cases."""
    from gantool.export.trt import Profile, run_build
    from gantool.paths import WEIGHTS_DIR
    from gantool.runtime.backends.trt import TrtBackend

    monkeypatch.chdir(tmp_path)
    plan, _, report = run_build(str(WEIGHTS_DIR / "cdcgan.mix.onnx"), "mix.fp16.plan", "fp16", Profile(1, 16, 64))
    assert report.passed and {"pairs 50/50", "mixtures", "path a->b"} <= {c.labels for c in report.comparisons}
    with TrtBackend(plan) as b:
        assert b.generator_metadata().condition == "class_weights"
        w = np.full((3, 10), 0.1, np.float32)
        assert b.infer({"z": np.zeros((3, 128), np.float32), "class_weights": w}).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("args, code, message", [(["--max-batch", "0"], 2, "0 is not in the range x>=1"),
                                                 (["--opt-batch", "512"], 1, "1 <= min <= opt <= max")])
def test_build_rejects_a_bad_profile_before_anything_else(args, code, message, tmp_path, capsys):
    got = main(["build", "--model", "cdcgan", "-o", str(tmp_path / "x.plan"), *args])
    err = capsys.readouterr().err
    assert got == code and message in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_a_plan_sidecar_is_read_through_the_contract_without_tensorrt(tmp_path, capsys):
    """inspect reads a plan's sidecar (schema 2, the contract's metadata) with no GPU; bad sidecars are one line."""
    from gantool.contract import write_metadata
    from gantool.runtime import Generator
    from gantool.runtime.backends.trt import SIDECAR_SCHEMA

    with Generator.load("cdcgan") as g:
        meta = g.metadata.replace(precision="fp16")
    plan = tmp_path / "c.fp16.plan"
    plan.write_bytes(b"not a real engine")
    side = {"sidecar_schema": SIDECAR_SCHEMA, "metadata": write_metadata(meta),
            "profile": {"min_batch": 1, "opt_batch": 16, "max_batch": 64}, "tensorrt_version": "11.0", "gpu": "H200"}
    Path(str(plan) + ".json").write_text(json.dumps(side))
    assert main(["inspect", "--model", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "(tensorrt-plan, fp16," in out and "profile: batch min 1 opt 16 max 64" in out and "model: cdcgan" in out
    for broken, fragment in (({**side, "sidecar_schema": 1}, "sidecar schema 1"),
                             ({**side, "profile": {}}, "no valid max_batch"),
                             ({**side, "metadata": {}}, "not a gantool generator")):
        Path(str(plan) + ".json").write_text(json.dumps(broken))
        assert main(["inspect", "--model", str(plan)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and fragment in err, err


@pytest.mark.gpu
@pytest.mark.trt
def test_an_fp32_engine_meets_the_fp32_bar_with_tf32_cleared(tmp_path, monkeypatch):
    """TensorRT enables TF32 by default; on Ampere and later it would miss fp32's 1e-4 bar (#19, defect 1)."""
    from gantool.export.trt import Profile, run_build

    monkeypatch.chdir(tmp_path)
    plan, sidecar, report = run_build("cdcgan", None, "fp32", Profile(1, 16, 64))
    assert plan.name == "cdcgan.fp32.plan" and report.passed and sidecar["metadata"]["gantool.precision"] == "fp32"


@pytest.mark.gpu
@pytest.mark.trt
def test_a_batch_below_the_profile_minimum_is_refused_in_one_line(tmp_path, monkeypatch):
    from gantool.errors import GantoolError
    from gantool.export.trt import Profile, run_build
    from gantool.runtime.backends.base import infer_split
    from gantool.runtime.backends.trt import TrtBackend

    monkeypatch.chdir(tmp_path)
    plan, _, report = run_build("cdcgan", None, "fp16", Profile(4, 16, 64))  # parity pads batches 1..3
    assert report.passed
    with TrtBackend(plan) as b:
        feeds = {"z": np.zeros((2, 128), np.float32), "labels": np.zeros(2, np.int64)}
        with pytest.raises(GantoolError, match=r"profile \(batch 4\.\.64\)"):
            infer_split(b, feeds)
        with pytest.raises(GantoolError, match="batch 4..64"):
            b.infer(feeds)
        big = {"z": np.zeros((66, 128), np.float32), "labels": np.zeros(66, np.int64)}
        assert infer_split(b, big).shape == (66, 1, 28, 28)  # 64 + the last 4 rows
