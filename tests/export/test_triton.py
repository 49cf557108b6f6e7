"""The Triton model repository, parsed with Triton's own schema (tritonclient's model_config_pb2)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import onnx
import pytest

from gantool.cli import main

TYPES = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.INT64: "TYPE_INT64"}


def model_config_pb2():
    """Load the schema module alone: tritonclient.grpc's __init__ would demand grpcio."""
    found = importlib.util.find_spec("tritonclient")
    if found is None:
        pytest.skip("tritonclient is not installed (it is in the dev extra)")
    path = Path(found.submodule_search_locations[0]) / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["cdcgan", "gan"])
def test_repository_config_matches_the_onnx_model(name, tmp_path, capsys):
    """Every model of the repository: a conditional one holds its label graph and NAME-mix, whose
    class_weights input is (batch, 10) float32 in both the graph and the config."""
    from google.protobuf import text_format

    pb2 = model_config_pb2()
    repo = tmp_path / "repo"
    assert main(["export", "--model", name, "--format", "triton", "-o", str(repo), "--max-batch", "128"]) == 0
    models = sorted(p.name for p in repo.iterdir())
    assert models == ([name, f"{name}-mix"] if name == "cdcgan" else [name])
    for folder in models:
        config = text_format.Parse((repo / folder / "config.pbtxt").read_text(), pb2.ModelConfig())
        model = onnx.load(str(repo / folder / "1" / "model.onnx"))
        assert config.name == folder and config.platform == "onnxruntime_onnx" and config.max_batch_size == 128
        assert config.HasField("dynamic_batching") and max(config.dynamic_batching.preferred_batch_size) <= 128
        for triton_list, onnx_list in ((config.input, model.graph.input), (config.output, model.graph.output)):
            assert [t.name for t in triton_list] == [v.name for v in onnx_list]
            for t, v in zip(triton_list, onnx_list):
                assert pb2.DataType.Name(t.data_type) == TYPES[v.type.tensor_type.elem_type]
                onnx_dims = [d.dim_value for d in v.type.tensor_type.shape.dim[1:]]  # without the batch dim
                if onnx_dims:
                    assert list(t.dims) == onnx_dims and not t.HasField("reshape")
                else:  # the label: [batch] in ONNX, dims [1] reshaped to a scalar per sample in Triton
                    assert list(t.dims) == [1] and t.HasField("reshape") and list(t.reshape.shape) == []
        assert '"arch": "%s"' % name in config.parameters["gantool.spec"].string_value
        inputs = {t.name: (pb2.DataType.Name(t.data_type), list(t.dims)) for t in config.input}
        if folder.endswith("-mix"):
            assert inputs["class_weights"] == ("TYPE_FP32", [10]) and "labels" not in inputs
            assert config.parameters["gantool.condition"].string_value == "class_weights"
        elif name == "cdcgan":
            assert inputs["labels"][0] == "TYPE_INT64" and "class_weights" not in inputs


def test_repository_errors_leave_nothing(tmp_path, capsys):
    code = main(["export", "--model", "gan", "--format", "triton", "-o", str(tmp_path / "r"), "--max-batch", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--max-batch" in err and "x>=1" in err
    assert not (tmp_path / "r").exists()
