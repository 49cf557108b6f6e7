"""The embedded runtime: torch-free sampling, seeds that match eval, batching, threads and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from gantool.paths import SHIPPED_ONNX, shipped_onnx
from gantool.runtime import Generator, SampleError


@pytest.fixture(scope="module")
def cdcgan():
    with Generator.load("cdcgan") as g:
        yield g


def test_full_sample_in_a_process_where_torch_and_onnx_cannot_import(tmp_path):
    code = textwrap.dedent(f"""
        import sys, json
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "onnx", "torchvision", "safetensors"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        from gantool.runtime import Generator
        g = Generator.load("cgan")
        a = g.sample(labels=[3, 3, 7], seed=1)
        u = Generator.load("gan").sample(n=5, seed=2)
        g.save_grid({str(tmp_path / 'grid.png')!r}, seed=0)
        print(json.dumps({{"shape": list(a.shape), "dtype": str(a.dtype), "u": list(u.shape),
                          "mods": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnx"))}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r == {"shape": [3, 28, 28], "dtype": "uint8", "u": [5, 28, 28], "mods": []}
    assert (tmp_path / "grid.png").stat().st_size > 1000


def test_same_seed_gives_evals_images(cdcgan):
    torch = pytest.importorskip("torch")
    from gantool.images import to_uint8
    from gantool.train.evaluate import generate
    from gantool.train.shipped import load_shipped

    spec, g, _ = load_shipped("cdcgan")
    with torch.no_grad():
        ref = to_uint8(generate(g, spec, 30, seed=5)[0].numpy())[:, 0]
    got = cdcgan.sample(n=30, seed=5)
    assert got.shape == ref.shape and np.abs(got.astype(int) - ref).max() <= 1
    assert np.array_equal(cdcgan.sample(n=30, seed=5), got)  # deterministic
    assert not np.array_equal(cdcgan.sample(n=30, seed=6), got)


def test_labels_reach_every_sample_and_requests_are_split(cdcgan):
    z = np.repeat(cdcgan.inputs(n=1, seed=0)["z"], 10, 0)  # one z, ten labels -> ten different digits
    whole = cdcgan.sample(labels=list(range(10)), z=z)
    assert len({im.tobytes() for im in whole}) == 10
    with Generator.load("cdcgan") as small:  # its own backend: the shared fixture is left as it is
        small.backend.max_batch = 3  # as an engine with a small profile would have
        calls = []
        infer = small.backend.infer
        small.backend.infer = lambda feeds: calls.append(len(feeds["z"])) or infer(feeds)  # type: ignore[method-assign]
        split = small.sample(labels=list(range(10)), z=z)
    assert calls == [3, 3, 3, 1] and np.abs(split.astype(int) - whole).max() <= 1


def test_cpu_requests_run_in_cache_sized_chunks_with_the_same_images(monkeypatch):
    with Generator.load("cdcgan", engine="ort") as g:
        assert g.backend.chunk == 64  # its largest activation is 12,544 values per sample: 64 of them are ~1M
        sizes = []
        infer = g.backend.infer
        monkeypatch.setattr(g.backend, "infer", lambda feeds: sizes.append(len(feeds["z"])) or infer(feeds))
        feeds = g.inputs(n=150, seed=2)
        chunked = g.run(feeds)
        assert sizes == [64, 64, 22]
        assert np.abs(chunked - infer(feeds)).max() <= 1e-5
    with Generator.load("gan", engine="ort") as g:
        assert g.backend.chunk == 1024  # an MLP's activations are small: batches stay whole


def test_many_threads_at_once_get_their_own_images(cdcgan):
    seeds = list(range(16))
    serial = [cdcgan.sample(labels=[s % 10] * 4, seed=s) for s in seeds]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda s: cdcgan.sample(labels=[s % 10] * 4, seed=s), seeds))
    for a, b in zip(serial, parallel):
        assert np.abs(a.astype(int) - b).max() <= 1


@pytest.mark.parametrize("kwargs, message", [
    ({"labels": [3, 10]}, "label 10 is out of range; allowed: 0..9"),
    ({"labels": [-1]}, "label -1 is out of range"),
    ({"labels": [1] * 40 + [-3]}, "label -3 is out of range"),  # over 32 labels: the numpy reduction
    ({"labels": np.array([2] * 50 + [12], np.int32)}, "label 12 is out of range"),
    ({"labels": [1.5]}, "labels must be integers"),
    ({"labels": ["a"]}, "labels must be integers"),
    ({"labels": [[1, 2]]}, "labels must be a 1-D sequence"),
    ({"n": 0}, "n must be in 1..100"),
    ({"n": 101}, "n must be in 1..100"),
    ({"n": 2.5}, "n must be an integer"),
    ({"n": 3, "labels": [1, 2]}, "n=3 but 2 labels"),
    ({"z": np.zeros((2, 5), np.float32)}, "z must have shape (2, 128)"),
    ({"z": np.full((1, 128), np.nan, np.float32)}, "z must be finite"),
    ({"z": np.full((1, 128), 3e38, np.float32)}, "z must be finite floats with a root mean square of at most 1000"),
    ({"z": np.zeros(128, np.float32)}, "n must be in 1..100"),
    ({"seed": -1}, "seed must be a non-negative integer, got -1."),
    ({"n": 2, "truncation": 0}, "truncation must be a number in (0, 1]"),
    ({"n": 2, "truncation": 1.5}, "truncation must be a number in (0, 1]"),
    ({"z": np.zeros((1, 128), np.float32), "truncation": 0.5}, "truncation applies to the noise gantool draws"),
])
def test_bad_input_is_a_value_error_naming_the_problem(kwargs, message):
    with Generator.load("cdcgan", max_n=100) as g:
        with pytest.raises(ValueError) as e:
            g.sample(**kwargs)
    assert message in str(e.value)


def test_truncation_reaches_the_images_and_keeps_a_seeds_first_images(cdcgan):
    from gantool.noise import make_noise

    t = cdcgan.sample(labels=[4] * 6, seed=8, truncation=0.5)
    np.testing.assert_array_equal(t[:2], cdcgan.sample(labels=[4] * 2, seed=8, truncation=0.5))
    z = make_noise(8, 6, 128, "uniform", truncation=0.5)  # cdcgan's z is uniform: scaled towards the centre
    np.testing.assert_array_equal(t, cdcgan.sample(z=z, labels=[4] * 6))
    assert not np.array_equal(t, cdcgan.sample(labels=[4] * 6, seed=8))
    np.testing.assert_array_equal(cdcgan.sample(n=3, seed=8, truncation=1), cdcgan.sample(n=3, seed=8))


def test_interpolate_z_walks_between_two_draws_with_each_rows_label():
    with Generator.load("cgan", tune=False) as g:
        walk = g.interpolate_z(steps=5, rows=3, seed=2, labels=[7, 1, 4])
        ends = g.inputs(n=6, seed=2)["z"]
        first = g.sample(z=ends[0::2], labels=[7, 1, 4])  # each row starts at z_2r and ends at z_2r+1
        last = g.sample(z=ends[1::2], labels=[7, 1, 4])
        assert walk.shape == (15, 28, 28)
        assert np.abs(walk[0::5].astype(int) - first).max() <= 1 and np.abs(walk[4::5].astype(int) - last).max() <= 1
        assert np.array_equal(g.interpolate_z(steps=5, rows=3, seed=2, labels=7)[:5], walk[:5])  # one label, all rows
        with pytest.raises(SampleError, match="one label for every row or one per row"):
            g.interpolate_z(steps=3, rows=3, labels=[1, 2])
        with pytest.raises(SampleError, match="steps must be an integer >= 2"):
            g.interpolate_z(steps=1)


def test_unconditional_model_refuses_labels():
    with Generator.load("gan") as g, pytest.raises(ValueError, match="unconditional; it takes no labels"):
        g.sample(labels=[1])


def test_a_file_that_is_not_a_gantool_generator(tmp_path):
    node = helper.make_node("Identity", ["z"], ["images"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(tmp_path / "x.onnx"))
    (tmp_path / "x.txt").write_text("hello")
    for path, message in ((tmp_path / "x.onnx", "not a gantool generator"), (tmp_path / "x.txt", "not a gantool generator"),
                          ("nope", "neither a file nor a zoo model")):
        with pytest.raises(ValueError, match=message):
            Generator.load(path)
    assert issubclass(SampleError, ValueError)


@pytest.mark.parametrize("name", SHIPPED_ONNX)
def test_shipped_onnx_matches_a_fresh_export_of_the_shipped_weights(name, tmp_path):
    pytest.importorskip("torch")
    from gantool.export.run import run_export
    from gantool.train.shipped import shipped_path

    assert shipped_onnx(name).is_file(), f"{name}.onnx is not shipped; run python scripts/ship_onnx.py {name}"
    from gantool.contract import FAMILY_KEY, VALIDATION_KEY
    from gantool.export.variants import family_digest

    fresh = run_export(str(shipped_path(name)), str(tmp_path / "fresh.onnx")).path
    shipped_meta = {p.key: p.value for p in onnx.load(str(shipped_onnx(name))).metadata_props}
    fresh_meta = {p.key: p.value for p in onnx.load(str(fresh)).metadata_props}
    family = shipped_meta.pop(FAMILY_KEY, None)  # the variants' shared digest, and their checks' verdicts
    shipped_meta.pop(VALIDATION_KEY, None)
    fresh_family = fresh_meta.pop(FAMILY_KEY)  # every export names its weights
    assert shipped_meta == fresh_meta
    assert family == fresh_family == family_digest(str(shipped_path(name))), \
        f"re-ship the variants: python scripts/ship_onnx.py {name}"
    for sibling in shipped_onnx(name).parent.glob(f"{name}.*.onnx"):  # plain, int8: the same weights
        assert {p.key: p.value for p in onnx.load(str(sibling)).metadata_props}[FAMILY_KEY] == family
    with Generator.load(shipped_onnx(name)) as a, Generator.load(fresh) as b:
        kw = {"labels": list(range(10)) * 5} if a.conditional else {"n": 50}
        fa, fb = a.run(a.inputs(seed=3, **kw)), b.run(b.inputs(seed=3, **kw))
    assert np.abs(fa - fb).max() <= 1e-5


def test_tensorrt_provider_gets_explicit_profiles_and_an_engine_cache(tmp_path):
    from gantool.runtime.backends.ort import trt_provider_options

    o = trt_provider_options(tmp_path, {"z": 128, "labels": 0}, 1024)
    assert o["trt_engine_cache_enable"] and o["trt_engine_cache_path"] == str(tmp_path)
    assert o["trt_profile_min_shapes"] == "z:1x128,labels:1"
    assert o["trt_profile_opt_shapes"] == "z:256x128,labels:256"
    assert o["trt_profile_max_shapes"] == "z:1024x128,labels:1024"


def test_gpu_engines_without_a_gpu_say_what_is_missing():
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    for engine in ("ort-cuda", "ort-trt"):
        with pytest.raises(Exception, match=r"needs ONNX Runtime's .*ExecutionProvider.*gantool\[gpu\]"):
            Generator.load("cdcgan", engine=engine)


@pytest.mark.gpu
@pytest.mark.trt
def test_plan_and_onnx_give_the_same_images(tmp_path, monkeypatch):
    from gantool.export.trt import Profile, run_build

    monkeypatch.chdir(tmp_path)
    plan, _, _ = run_build("cdcgan", None, "fp16", Profile(1, 16, 64))
    with Generator.load(plan) as trt, Generator.load("cdcgan", engine="ort") as ort:
        a, b = trt.sample(n=200, seed=3), ort.sample(n=200, seed=3)  # 200 > max batch 64: split
    assert np.abs(a.astype(int) - b).mean() < 2.0


def test_64x64_zoo_names_need_the_export_extras_and_say_so(tmp_path):
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "onnx"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        from gantool.runtime import Generator
        try:
            Generator.load("dcgan")
        except Exception as e:
            print(type(e).__name__, e)
    """)
    env = {**__import__("os").environ, "GANTOOL_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert "ModelNotCached dcgan does not ship as ONNX" in out.stdout, out.stdout + out.stderr
    assert "gantool export --model dcgan --to-cache" in out.stdout


def test_openvino_engine_gives_the_same_images():
    pytest.importorskip("openvino")
    with Generator.load("cdcgan", engine="openvino") as ov, Generator.load("cdcgan", engine="ort") as ort:
        assert ov.backend.name == "openvino"
        a, b = ov.sample(n=70, seed=9), ort.sample(n=70, seed=9)
    assert np.abs(a.astype(int) - b).max() <= 1


def test_the_64x64_cache_is_named_by_the_weights_digest(tmp_path, monkeypatch):
    from gantool import paths

    monkeypatch.setattr(paths, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setenv("GANTOOL_CACHE", str(tmp_path / "cache"))
    (tmp_path / "dcgan.safetensors").write_bytes(b"weights v1")
    first = paths.cached_onnx("dcgan")
    (tmp_path / "dcgan.safetensors").write_bytes(b"weights v2")  # re-shipped weights: a new file, never a stale one
    second = paths.cached_onnx("dcgan")
    assert first != second and first.parent == second.parent == tmp_path / "cache" / "onnx"
