"""ConvTranspose lowering: exact on every layout it takes, honest about the FLOPs it adds."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from gantool.contract import FLOPS_KEY
from gantool.export.flops import graph_flops_per_sample, onnx_flops_per_sample
from gantool.export.lower import lower_conv_transpose
from gantool.runtime.backends.ort import OrtBackend


def one_conv_transpose(cin: int, cout: int, k: int, s: int, p: int, side: int, bias: bool) -> onnx.ModelProto:
    rng = np.random.default_rng(k * 100 + s * 10 + p)
    inits = [numpy_helper.from_array(rng.standard_normal((cin, cout, k, k)).astype(np.float32), "w")]
    inputs = ["z", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32), "b"))
        inputs.append("b")
    node = helper.make_node("ConvTranspose", inputs, ["images"], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4)
    g = helper.make_graph([node], "t", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", cin, side, side])],
                          [helper.make_tensor_value_info("images", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 10
    return onnx.shape_inference.infer_shapes(m, strict_mode=True)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    with OrtBackend(model.SerializeToString()) as be:
        return be.infer({"z": x})


@pytest.mark.parametrize("k,s,p,side", [(4, 2, 1, 7), (3, 2, 1, 4), (4, 2, 0, 5), (5, 2, 2, 6), (2, 2, 0, 3),
                                        (3, 3, 0, 4), (5, 3, 1, 3), (6, 3, 2, 5), (4, 1, 0, 1)])
@pytest.mark.parametrize("bias", [True, False])
def test_lowered_conv_transpose_gives_the_same_numbers(k, s, p, side, bias):
    model = one_conv_transpose(cin=5, cout=8, k=k, s=s, p=p, side=side, bias=bias)
    x = np.random.default_rng(1).standard_normal((3, 5, side, side)).astype(np.float32)
    want = run(model, x)
    lowered, n = lower_conv_transpose(onnx.ModelProto.FromString(model.SerializeToString()))
    onnx.checker.check_model(lowered, full_check=True)
    ops = {nd.op_type for nd in lowered.graph.node}
    assert n == 1 and "ConvTranspose" not in ops and ops & {"Gemm", "Conv"}
    got = run(lowered, x)
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-4


def test_layers_with_few_output_channels_are_kept():
    model = one_conv_transpose(cin=64, cout=1, k=4, s=2, p=1, side=14, bias=False)
    lowered, n = lower_conv_transpose(model)
    assert n == 0 and [nd.op_type for nd in lowered.graph.node] == ["ConvTranspose"]


def test_an_export_records_the_flops_of_the_graph_before_lowering(tmp_path, export_file):
    torch = pytest.importorskip("torch")
    from gantool.train.zoo import MNIST_INFO, build_generator, build_spec, generator_flops

    spec = build_spec("cdcgan", MNIST_INFO)
    g = build_generator(spec).eval()
    plain, low = (export_file(spec, g, tmp_path / f"{n}.onnx", lower=n == "low")[0] for n in ("plain", "low"))
    pm, lm = onnx.load(str(plain)), onnx.load(str(low))
    assert "ConvTranspose" in {n.op_type for n in pm.graph.node}
    assert {"Gemm", "DepthToSpace"} <= {n.op_type for n in lm.graph.node}
    recorded = int({p.key: p.value for p in lm.metadata_props}[FLOPS_KEY])
    assert recorded == graph_flops_per_sample(pm) == onnx_flops_per_sample(low)
    assert abs(recorded - generator_flops(spec)) / recorded < 0.02
    assert graph_flops_per_sample(lm) >= recorded  # cropped phase pixels may be computed; never counted
    z = np.random.default_rng(0).uniform(-1, 1, (33, spec.latent_dim)).astype(np.float32)
    feeds = {"z": z, "labels": np.arange(33, dtype=np.int64) % 10}
    with OrtBackend(plain) as a, OrtBackend(low) as b, torch.no_grad():
        ref = g(torch.from_numpy(z), torch.from_numpy(feeds["labels"])).numpy()
        assert np.abs(a.infer(feeds) - ref).max() < 1e-5 and np.abs(b.infer(feeds) - ref).max() < 1e-5


@pytest.mark.parametrize("k,p,side,folded", [(4, 1, 3, True), (3, 1, 4, False), (4, 0, 3, True)])
def test_the_interleave_is_folded_into_a_following_conv_transpose(k, p, side, folded):
    rng = np.random.default_rng(7)
    w1 = numpy_helper.from_array(rng.standard_normal((6, 8, k, k)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 1, 4, 4)).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(np.array([0.3], np.float32), "b2")
    nodes = [helper.make_node("ConvTranspose", ["z", "w1"], ["h"], kernel_shape=[k, k], strides=[2, 2], pads=[p] * 4),
             helper.make_node("LeakyRelu", ["h"], ["a"], alpha=0.2),
             helper.make_node("ConvTranspose", ["a", "w2", "b2"], ["t"], kernel_shape=[4, 4], strides=[2, 2], pads=[1] * 4),
             helper.make_node("Tanh", ["t"], ["images"])]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 6, side, side])],
                          [helper.make_tensor_value_info("images", TensorProto.FLOAT, None)], [w1, w2, b2])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    x = rng.standard_normal((5, 6, side, side)).astype(np.float32)
    want = run(model, x)
    lowered, n = lower_conv_transpose(onnx.ModelProto.FromString(model.SerializeToString()))
    onnx.checker.check_model(lowered, full_check=True)
    ops = [nd.op_type for nd in lowered.graph.node]
    assert n == 1 and ("DepthToSpace" not in ops) == folded and ops.count("ConvTranspose") == 1
    names = {t.name for t in lowered.graph.initializer}
    assert "b2" in names and ("w2" in names) != folded  # a folded layer's old weights are dropped
    got = run(lowered, x)
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-4


def test_no_fold_when_an_interleaved_tensor_is_a_graph_output():
    rng = np.random.default_rng(3)
    w1 = numpy_helper.from_array(rng.standard_normal((6, 8, 4, 4)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 1, 4, 4)).astype(np.float32), "w2")
    nodes = [helper.make_node("ConvTranspose", ["z", "w1"], ["h"], kernel_shape=[4, 4], strides=[2, 2], pads=[1] * 4),
             helper.make_node("Relu", ["h"], ["a"]),
             helper.make_node("ConvTranspose", ["a", "w2"], ["images"], kernel_shape=[4, 4], strides=[2, 2], pads=[1] * 4)]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("images", "a")]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 6, 3, 3])], outs, [w1, w2])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    x = rng.standard_normal((2, 6, 3, 3)).astype(np.float32)
    lowered, _ = lower_conv_transpose(onnx.ModelProto.FromString(model.SerializeToString()))
    assert "DepthToSpace" in [nd.op_type for nd in lowered.graph.node]  # "a" keeps its layout
    sessions = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]) for m in (model, lowered)]
    want, got = (s.run(["images", "a"], {"z": x}) for s in sessions)
    assert all(np.abs(g_ - w_).max() < 1e-4 for g_, w_ in zip(got, want))


def small_model(nodes: list, side: int, cin: int, inits: list, outputs=("images",)) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", cin, side, side])],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def test_activations_move_past_the_interleave_onto_each_phase_conv():
    rng = np.random.default_rng(5)
    w = numpy_helper.from_array(rng.standard_normal((6, 8, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("ConvTranspose", ["z", "w"], ["h"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4),
             helper.make_node("LeakyRelu", ["h"], ["images"], alpha=0.2)]  # 4x4 -> 7x7: interleave, then crop
    model = small_model(nodes, 4, 6, [w])
    x = rng.standard_normal((3, 6, 4, 4)).astype(np.float32)
    lowered, _ = lower_conv_transpose(onnx.ModelProto.FromString(model.SerializeToString()))
    onnx.checker.check_model(lowered, full_check=True)
    producer = {o: nd for nd in lowered.graph.node for o in nd.output}
    acts = [nd for nd in lowered.graph.node if nd.op_type == "LeakyRelu"]
    assert len(acts) == 4 and all(producer[a.input[0]].op_type == "Conv" for a in acts)  # one per phase, fusable
    assert all(a.attribute[0].f == pytest.approx(0.2) for a in acts)
    assert producer["images"].op_type == "Slice"
    assert np.abs(run(lowered, x) - run(model, x)).max() < 1e-4


def test_a_1x1_conv_on_a_1x1_map_becomes_a_gemm_and_larger_maps_keep_their_conv():
    rng = np.random.default_rng(6)
    w = numpy_helper.from_array(rng.standard_normal((16, 8, 1, 1)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "b")
    for side, gemm in ((1, True), (2, False)):
        nodes = [helper.make_node("Conv", ["z", "w", "b"], ["c"], kernel_shape=[1, 1]),
                 helper.make_node("Tanh", ["c"], ["images"])]
        model = small_model(nodes, side, 8, [w, b])
        x = rng.standard_normal((5, 8, side, side)).astype(np.float32)
        lowered, n = lower_conv_transpose(onnx.ModelProto.FromString(model.SerializeToString()))
        ops = [nd.op_type for nd in lowered.graph.node]
        assert (n, "Gemm" in ops, "Conv" in ops) == (int(gemm), gemm, not gemm)
        assert np.abs(run(lowered, x) - run(model, x)).max() < 1e-5
