"""The TensorRT path's logic on the CPU (issue #19): builder flags, precision from a graph's dtypes,
the parity reference, the min-batch profile, the sidecar's version check, cache keys, Triton's
--plan batch, ORT's GPU providers. TensorRT itself is replaced by a fake module that records the calls
build_plan makes, and the engine by ONNX Runtime on the graph it was built from."""

from __future__ import annotations

import ast
import json
import logging
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest

from gantool.cli import main
from gantool.contract import write_metadata
from gantool.errors import GantoolError
from gantool.paths import WEIGHTS_DIR
from gantool.runtime.backends.base import Backend, infer_split
from gantool.runtime.backends.trt import SIDECAR_SCHEMA, TrtBackend, check_built_here, rebuild_command

ROOT = Path(__file__).resolve().parents[2]
CDCGAN, GAN = WEIGHTS_DIR / "cdcgan.onnx", WEIGHTS_DIR / "gan.onnx"


# --- a fake tensorrt: the calls build_plan makes, recorded --------------------------------------------
class FakeLogger:
    WARNING, VERBOSE = 2, 4

    def __init__(self, severity):
        self.severity = severity


class FakeTrt:
    __version__ = "10.12.0.36"
    Logger = FakeLogger
    BuilderFlag = SimpleNamespace(TF32="TF32")
    NetworkDefinitionCreationFlag = SimpleNamespace(STRONGLY_TYPED=0)
    MemoryPoolType = SimpleNamespace(WORKSPACE="WORKSPACE")

    def __init__(self) -> None:
        self.cleared: list[str] = []
        self.caches_set: list[bytes] = []
        self.shapes: dict[str, tuple] = {}
        trt = self

        class Cache:
            def __init__(self, data: bytes) -> None:
                self.data = data

            def serialize(self) -> bytes:
                return b"tuned:" + self.data

        class Config:
            def set_memory_pool_limit(self, pool, size):
                pass

            def clear_flag(self, flag):
                trt.cleared.append(flag)

            def add_optimization_profile(self, profile):
                pass

            def create_timing_cache(self, data):
                return Cache(data)

            def set_timing_cache(self, cache, ignore_mismatch):
                assert ignore_mismatch is False
                trt.caches_set.append(cache.data)
                self.cache = cache
                return cache.data != b"stale"  # TensorRT returns False for a cache of another version or GPU

            def get_timing_cache(self):
                return self.cache

        class Profile:
            def set_shape(self, name, lo, opt, hi):
                trt.shapes[name] = (lo, opt, hi)

        class Tensor:
            def __init__(self, name, shape):
                self.name, self.shape, self.dtype = name, shape, "float"

        class Network:
            def __init__(self):
                self.inputs, self.outputs = [], []
                self.num_inputs = self.num_outputs = 0

            def get_input(self, i):
                return self.inputs[i]

            def get_output(self, i):
                return self.outputs[i]

        class Parser:
            num_errors = 0

            def __init__(self, network, logger):
                self.network = network

            def parse_from_file(self, path):
                g = onnx.load(path).graph

                def shape(v):
                    return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim)

                self.network.inputs = [Tensor(v.name, shape(v)) for v in g.input]
                self.network.outputs = [Tensor(v.name, shape(v)) for v in g.output]
                self.network.num_inputs, self.network.num_outputs = len(g.input), len(g.output)
                return True

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                return Network()

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                return b"a fake engine"

        self.Builder, self.OnnxParser = Builder, Parser


class EngineOnOrt(Backend):
    """Stands in for TrtBackend: ONNX Runtime on the graph the plan was built from (its sidecar's source)."""

    engine = "trt"

    def __init__(self, plan):
        from gantool.runtime.backends.ort import OrtBackend
        from gantool.runtime.backends.trt import read_sidecar

        super().__init__(plan)
        side = read_sidecar(plan)
        self.sidecar = side
        self.ort = OrtBackend(Path(side["source_onnx"]).read_bytes(), name="trt")
        self.built_from = graph_precision_of(side["source_onnx"])

    def _activate(self):
        self.ort.activate()

    def _deactivate(self):
        self.ort.deactivate()

    def infer(self, feeds):
        return self.ort.infer(feeds)

    def _metadata_props(self):
        return self.sidecar["metadata"]

    def graph_io(self):
        return self.ort.graph_io()


def graph_precision_of(path):
    from gantool.export.trt import graph_precision

    return graph_precision(onnx.load(str(path)))


@pytest.fixture
def fake_trt(monkeypatch, tmp_path):
    """build with TensorRT faked, in tmp_path; returns the fake (its recorded calls) and the engines built."""
    import gantool.export.trt as export_trt
    import gantool.runtime.backends.trt as backend_trt

    trt = FakeTrt()
    built: list[EngineOnOrt] = []

    def engine(plan):
        built.append(EngineOnOrt(plan))
        return built[-1]

    monkeypatch.setattr(export_trt, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(backend_trt, "TrtBackend", engine)
    monkeypatch.chdir(tmp_path)
    trt.built = built
    return trt


@pytest.fixture(scope="module")
def fp16_onnx(tmp_path_factory):
    from gantool.export.trt import _fp16_graph
    from gantool.runtime.backends.ort import OrtBackend

    with OrtBackend(CDCGAN) as b:
        meta = b.generator_metadata()
    return _fp16_graph(CDCGAN, meta, tmp_path_factory.mktemp("fp16") / "cdcgan.fp16.onnx")


def one_line_error(capsys, code, argv):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


# --- 1. TF32 -----------------------------------------------------------------------------------------
def test_fp32_builds_clear_tf32_and_fp16_builds_keep_it():
    from gantool.export.trt import builder_flags_cleared

    assert builder_flags_cleared("fp32") == {"TF32"}
    assert builder_flags_cleared("fp16") == set()
    with pytest.raises(GantoolError, match="allowed: fp16, fp32"):
        builder_flags_cleared("int8")


def test_build_plan_clears_tf32_for_fp32_and_keys_and_checks_the_timing_cache(fake_trt, tmp_path, caplog):
    from gantool.export.trt import Profile, build_plan, keyed_cache_path
    from gantool.runtime.backends.ort import OrtBackend

    with OrtBackend(CDCGAN) as b:
        meta = b.generator_metadata()
    side = build_plan(CDCGAN, tmp_path / "a.plan", Profile(2, 8, 16), meta, tmp_path / "gantool.timing-cache")
    assert fake_trt.cleared == ["TF32"]
    assert fake_trt.shapes == {"z": ((2, 128), (8, 128), (16, 128)), "labels": ((2,), (8,), (16,))}
    assert side["compute_capability"] is None and side["profile"] == {"min_batch": 2, "opt_batch": 8, "max_batch": 16}
    cache = keyed_cache_path(tmp_path / "gantool.timing-cache", "10.12.0.36", None)
    assert cache.name == "gantool.trt10.12.0.36-smunknown.timing-cache" and cache.read_bytes() == b"tuned:"
    assert not (tmp_path / "gantool.timing-cache").exists()
    cache.write_bytes(b"stale")  # another TensorRT's cache: refused by set_timing_cache, so a fresh one is used
    fake_trt.cleared.clear()
    with caplog.at_level(logging.WARNING):
        build_plan(CDCGAN, tmp_path / "b.plan", Profile(), meta.replace(precision="fp16"), tmp_path / "gantool.timing-cache")
    assert fake_trt.caches_set[-2:] == [b"stale", b""] and "does not match" in caplog.text
    assert fake_trt.cleared == []  # fp16 keeps TF32 for the layers left in fp32


# --- 2. precision from the graph ---------------------------------------------------------------------
def test_graph_precision_reads_the_dtypes(fp16_onnx):
    from onnx import TensorProto, helper

    from gantool.export.trt import graph_precision

    assert graph_precision(onnx.load(str(CDCGAN))) == "fp32"
    assert graph_precision(onnx.load(str(fp16_onnx))) == "fp16"
    assert graph_precision(onnx.load(str(WEIGHTS_DIR / "cdcgan.int8u.onnx"))) == "int8"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    for to, want in ((TensorProto.FLOAT16, "fp16"), (TensorProto.BFLOAT16, "bf16"), (TensorProto.DOUBLE, "fp32")):
        nodes = [helper.make_node("Cast", ["x"], ["h"], to=to), helper.make_node("Cast", ["h"], ["y"], to=1)]
        assert graph_precision(helper.make_model(helper.make_graph(nodes, "g", [x], [y]))) == want


@pytest.mark.parametrize("graph, meta, asked, want", [
    ("fp32", "fp32", None, ("fp32", False)), ("fp32", "fp32", "fp32", ("fp32", False)),
    ("fp32", "fp32", "fp16", ("fp16", True)), ("fp16", "fp16", None, ("fp16", False)),
    ("fp16", "fp16", "fp32", "contradicts it; allowed: --precision fp16 or none"),
    ("fp16", "fp32", None, "its metadata says fp32, but its graph computes in fp16"),
    ("int8", "int8", None, "allowed: fp16, fp32")])
def test_engine_precision_follows_the_graph(graph, meta, asked, want):
    from gantool.export.trt import engine_precision

    if isinstance(want, tuple):
        assert engine_precision("m.onnx", graph, meta, asked) == want
    else:
        with pytest.raises(GantoolError, match=want) as e:
            engine_precision("m.onnx", graph, meta, asked)
        assert "\n" not in str(e.value)


def test_an_fp32_onnx_builds_fp32_by_default_named_and_checked_as_such(fake_trt, tmp_path, capsys):
    assert main(["build", "--model", str(CDCGAN)]) == 0
    out = capsys.readouterr().out
    side = json.loads((tmp_path / "cdcgan.fp32.plan.json").read_text())
    assert side["metadata"]["gantool.precision"] == "fp32" and fake_trt.cleared == ["TF32"]
    assert fake_trt.built[0].built_from == "fp32"
    assert "parity: trt (fp32) against onnxruntime-cpu fp32 (cdcgan.onnx itself)" in out and "PASSED" in out


def test_an_fp32_onnx_with_precision_fp16_builds_from_its_converted_graph(fake_trt, tmp_path, capsys):
    assert main(["build", "--model", str(CDCGAN), "--precision", "fp16"]) == 0
    side = json.loads((tmp_path / "cdcgan.fp16.plan.json").read_text())
    assert side["metadata"]["gantool.precision"] == "fp16" and fake_trt.built[0].built_from == "fp16"
    assert "against onnxruntime-cpu fp32 (cdcgan.onnx itself)" in capsys.readouterr().out


def test_an_fp16_onnx_refuses_precision_fp32_and_a_missing_reference(fake_trt, fp16_onnx, tmp_path, capsys):
    err = one_line_error(capsys, 1, ["build", "--model", str(fp16_onnx), "--precision", "fp32"])
    assert "is a fp16 graph" in err and "--precision fp32 contradicts it" in err
    err = one_line_error(capsys, 1, ["build", "--model", str(fp16_onnx)])
    assert "cannot be its own fp32 parity reference" in err and "--reference" in err
    assert not list(tmp_path.glob("*.plan*")) and fake_trt.built == []


# --- 3. the parity reference -------------------------------------------------------------------------
def test_an_fp16_onnx_is_checked_against_its_reference(fake_trt, fp16_onnx, tmp_path, capsys):
    assert main(["build", "--model", str(fp16_onnx), "--reference", str(CDCGAN)]) == 0
    out = capsys.readouterr().out
    assert "parity: trt (fp16) against onnxruntime-cpu fp32 (--reference cdcgan.onnx)" in out
    assert json.loads((tmp_path / "cdcgan.fp16.plan.json").read_text())["metadata"]["gantool.precision"] == "fp16"


@pytest.mark.parametrize("model, reference, fragment", [
    ("cdcgan", str(CDCGAN), "--reference is for an .onnx --model"),
    (str(CDCGAN), str(GAN), "is another model (gan, labels)"),
    (str(CDCGAN), "missing.onnx", "no such ONNX file"),
    (str(CDCGAN), "FP16", "is a fp16 graph (metadata: fp16); allowed: an fp32 ONNX")])
def test_a_wrong_reference_is_refused_in_one_line(model, reference, fragment, fake_trt, fp16_onnx, capsys):
    reference = str(fp16_onnx) if reference == "FP16" else reference
    assert fragment in one_line_error(capsys, 1, ["build", "--model", model, "--reference", reference])
    assert fake_trt.built == []


# --- 7. the profile's minimum batch ------------------------------------------------------------------
class Doubler(Backend):
    def __init__(self, lo=None, hi=None):
        super().__init__(b"")
        self.min_batch, self.max_batch, self.calls = lo, hi, []

    def _activate(self): ...
    def _deactivate(self): ...
    def _metadata_props(self): return {}
    def graph_io(self): return [], []

    def infer(self, feeds):
        z = feeds["z"]
        assert self.min_batch is None or len(z) >= self.min_batch
        assert self.max_batch is None or len(z) <= self.max_batch
        self.calls.append(len(z))
        return 2 * z


def test_infer_split_keeps_every_piece_within_the_profile():
    z = np.arange(19 * 3, dtype=np.float32).reshape(19, 3)
    plain = Doubler(hi=8)
    assert np.array_equal(infer_split(plain, {"z": z}), 2 * z) and plain.calls == [8, 8, 3]  # as before
    lo = Doubler(lo=4, hi=8)
    assert np.array_equal(infer_split(lo, {"z": z}), 2 * z) and lo.calls == [8, 8, 4]  # the tail re-runs row 15
    with pytest.raises(GantoolError, match="batch 2 is below the backend engine's minimum batch 4"):
        infer_split(lo, {"z": z[:2]})
    lo.pad_small_batches = True
    assert np.array_equal(infer_split(lo, {"z": z[:2]}), 2 * z[:2]) and lo.calls[-1] == 4


def sidecar(tmp_path, **changes):
    from gantool.runtime.backends.ort import OrtBackend

    with OrtBackend(CDCGAN) as b:
        meta = b.generator_metadata().replace(precision="fp16")
    plan = tmp_path / "c.fp16.plan"
    plan.write_bytes(b"not a real engine")
    side = {"sidecar_schema": SIDECAR_SCHEMA, "metadata": write_metadata(meta), "tensorrt_version": "10.12.0.36",
            "profile": {"min_batch": 4, "opt_batch": 16, "max_batch": 64}, "gpu": "NVIDIA H200",
            "compute_capability": "9.0", "source_onnx": "/gone/model.onnx", **changes}
    Path(str(plan) + ".json").write_text(json.dumps(side))
    return plan, side


def test_a_batch_below_the_plans_minimum_names_the_profile_and_the_rebuild(tmp_path):
    plan, side = sidecar(tmp_path)
    b = TrtBackend(plan)
    b.sidecar, b.min_batch, b.max_batch = side, 4, 64  # what _activate() reads from the sidecar
    with pytest.raises(GantoolError) as e:
        infer_split(b, {"z": np.zeros((1, 128), np.float32), "labels": np.zeros(1, np.int64)})
    msg = str(e.value)
    assert "\n" not in msg and "batch 1 is outside its TensorRT profile (batch 4..64); allowed: 4 or more" in msg
    assert ("gantool build --model cdcgan --precision fp16 --min-batch 1 --opt-batch 16 --max-batch 64 -o "
            f"{plan}") in msg


def test_rebuild_command_uses_the_source_onnx_while_it_exists(tmp_path):
    plan, side = sidecar(tmp_path, source_onnx=str(CDCGAN))
    assert rebuild_command(side, plan, max_batch=128).startswith(f"gantool build --model {CDCGAN} --precision fp16 "
                                                                "--min-batch 4 --opt-batch 16 --max-batch 128")


# --- 6. the sidecar's TensorRT and GPU ---------------------------------------------------------------
def test_a_plan_from_another_tensorrt_is_refused_in_one_line_before_deserialising(tmp_path, capsys, monkeypatch):
    import gantool.runtime.backends.trt as backend_trt

    plan, _ = sidecar(tmp_path)
    assert "tensorrt" not in sys.modules
    monkeypatch.setattr(backend_trt, "import_tensorrt", lambda: SimpleNamespace(__version__="10.13.3.9"))
    err = one_line_error(capsys, 1, ["sample", "--model", str(plan), "-o", str(tmp_path / "s.png")])
    assert "built with TensorRT 10.12.0.36, and this is TensorRT 10.13.3.9" in err
    assert "rebuild it here: gantool build --model cdcgan --precision fp16 --min-batch 4" in err
    assert not (tmp_path / "s.png").exists()


def test_check_built_here_compares_the_version_and_the_compute_capability(tmp_path):
    plan, side = sidecar(tmp_path)
    check_built_here(side, plan, "10.12.0.36", "9.0")
    check_built_here(side, plan, "10.12.0.36", None)  # no device to ask: TensorRT's own check remains
    check_built_here({**side, "compute_capability": None}, plan, "10.12.0.36", "8.9")  # an older sidecar
    with pytest.raises(GantoolError, match=r"built on NVIDIA H200 \(compute capability 9.0\), and this GPU's is 8.9"):
        check_built_here(side, plan, "10.12.0.36", "8.9")


def test_cache_keys_change_with_tensorrt_gpu_and_graph():
    from gantool.export.trt import keyed_cache_path, plan_cache_name

    assert keyed_cache_path("a/gantool.timing-cache", "10.12.0", "9.0") == Path("a/gantool.trt10.12.0-sm90.timing-cache")
    assert keyed_cache_path("cache", "11.0", "8.9") == Path("cache.trt11.0-sm89")
    names = {plan_cache_name("cdcgan", "fp16", v, cc, d) for v, cc, d in
             (("10.12", "9.0", "ab" * 32), ("10.13", "9.0", "ab" * 32), ("10.12", "8.9", "ab" * 32),
              ("10.12", "9.0", "cd" * 32))}
    assert len(names) == 4 and "cdcgan.fp16.trt10.12-sm90.abababababababab.plan" in names


# --- 8. ONNX Runtime's GPU providers -----------------------------------------------------------------
class GotProviders:
    """A real CPU session that reports the providers a GPU session would have got."""

    def __init__(self, got):
        import onnxruntime as ort

        self.got, self.real_session, self.set = got, ort.InferenceSession, []

    def __call__(self, model, options, providers):
        self.asked = providers
        self.session = self.real_session(model, options, providers=["CPUExecutionProvider"])
        outer = self

        class Session:
            def __getattr__(self, name):
                return getattr(outer.session, name)

            def get_providers(self):
                return list(outer.got)

            def set_providers(self, providers, options):
                outer.set.append((providers, options))
                outer.got = providers

        return Session()


@pytest.mark.parametrize("got, engine", [(["CPUExecutionProvider"], "ort"),
                                         (["CUDAExecutionProvider", "CPUExecutionProvider"], "ort-cuda")])
def test_auto_is_labelled_by_the_providers_the_session_got(got, engine, monkeypatch):
    import onnxruntime as ort

    import gantool.runtime.backends as backends
    from gantool.runtime.backends.ort import cpu_chunk

    offered = ["CUDAExecutionProvider", "CPUExecutionProvider"]  # onnxruntime-gpu, GPU or not
    monkeypatch.setattr(ort, "get_available_providers", lambda: offered)
    monkeypatch.setattr(backends, "available_providers", lambda: offered)
    fake = GotProviders(got)
    monkeypatch.setattr(ort, "InferenceSession", fake)
    b = backends.open_backend(CDCGAN, "auto")
    try:
        assert fake.asked[0][0] == "CUDAExecutionProvider" and b.engine == b.name == engine
        on_cpu = engine == "ort"
        assert b.chunk == (cpu_chunk(b.generator_metadata().peak_activation_values or 0) if on_cpu else None)
        assert b.chunk is not None or not on_cpu
        z = np.zeros((3, 128), np.float32)
        assert b.infer({"z": z, "labels": np.arange(3, dtype=np.int64)}).shape == (3, 1, 28, 28)
    finally:
        b.deactivate()


def test_ort_trt_registers_tensorrt_then_cuda_then_cpu(monkeypatch):
    import onnxruntime as ort

    from gantool.runtime.backends.ort import ORT_TRT_PROVIDERS, OrtTrtBackend

    assert ORT_TRT_PROVIDERS == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(ORT_TRT_PROVIDERS))
    fake = GotProviders(["CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", fake)
    with OrtTrtBackend(CDCGAN) as b:
        b.generator_metadata()
        assert b.max_batch == 1024
    (providers, options), = fake.set
    assert providers == list(ORT_TRT_PROVIDERS) and options[1:] == [{}, {}]
    assert options[0]["trt_profile_max_shapes"] == "z:1024x128,labels:1024"


# --- 9. Triton --plan --------------------------------------------------------------------------------
def test_triton_max_batch_stays_within_the_plans_profile(tmp_path, capsys):
    from gantool.export.triton import plan_max_batch

    plan, _ = sidecar(tmp_path, profile={"min_batch": 1, "opt_batch": 16, "max_batch": 64})
    assert plan_max_batch(plan, None) == 64 and plan_max_batch(plan, 32) == 32
    repo = tmp_path / "repo"
    err = one_line_error(capsys, 1, ["export", "--model", "cdcgan", "--format", "triton", "--plan", str(plan),
                                     "--max-batch", "128", "-o", str(repo)])
    assert "--max-batch 128 is larger than --plan c.fp16.plan's profile maximum 64; allowed: 1 to 64" in err
    assert not repo.exists()
    plan, _ = sidecar(tmp_path)  # min_batch 4
    with pytest.raises(GantoolError, match="its profile starts at batch 4, and Triton sends batches from 1"):
        plan_max_batch(plan, None)


# --- 10. cuda-python and the stream handle -----------------------------------------------------------
def test_the_trt_extra_needs_cuda_python_12_6_1_and_the_stream_is_passed_as_its_handle():
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["trt"]
    assert "cuda-python>=12.6.1" in extra and "onnx>=1.17" in extra
    tree = ast.parse((ROOT / "runtime" / "backends" / "trt.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "execute_async_v3"]
    assert len(calls) == 1 and ast.unparse(calls[0].args[0]) == "int(self.stream)"


# --- 4. GPU engines build from the unlowered graph ------------------------------------------------------
@pytest.mark.parametrize("args, lower, graph", [([], False, "plain"), (["--graph", "lowered"], True, "lowered")])
def test_a_zoo_name_builds_from_the_plain_graph_by_default(args, lower, graph, fake_trt, tmp_path, capsys,
                                                          monkeypatch):
    import shutil

    import gantool.export.run as export_run
    from gantool.runtime.backends.ort import OrtBackend

    exported = []

    def run_export(model, output, precision="fp32", **options):  # the shipped graphs stand in for the export
        exported.append(options)
        shutil.copy(WEIGHTS_DIR / ("cdcgan.plain.onnx" if not options.get("lower", True) else "cdcgan.onnx"), output)
        with OrtBackend(output) as b:
            return SimpleNamespace(path=Path(output), metadata=b.generator_metadata())

    monkeypatch.setattr(export_run, "run_export", run_export)
    assert main(["build", "--model", "cdcgan", "--precision", "fp32", *args]) == 0, capsys.readouterr().err
    side = json.loads((tmp_path / "cdcgan.fp32.plan.json").read_text())
    assert exported == [{"lower": lower}] and side["metadata"]["gantool.graph"] == graph


def test_graph_is_refused_for_an_onnx_model(fake_trt, capsys):
    err = one_line_error(capsys, 1, ["build", "--model", str(CDCGAN), "--graph", "plain"])
    assert "--graph sets the form a zoo name or checkpoint is exported in" in err
