"""Rewrite ConvTranspose into ops that ONNX Runtime's CPU provider runs fast, with the same numbers.

ORT's CPU ConvTranspose runs one small GEMM plus a col2im scatter per image, which makes it the
slowest kernel in every zoo generator (at batch 256, 90% of cdcgan's time). Two exact rewrites:

- a ConvTranspose whose input is 1x1 (the first layer: z -> 4x4) is a Gemm, (B, Cin) @ (Cin, Cout*k*k);
- a stride-s ConvTranspose is s*s phase Convs (the sub-pixel decomposition): output pixel
  (s*m + rh, s*n + rw) only ever sees the taps w[s*j + rh + pad] of input m - j, so each phase is an
  ordinary small Conv. The phases are concatenated and interleaved by DepthToSpace (DCR), then
  cropped when the output side is not a multiple of s. Convs run on MLAS's blocked NCHWc kernels.

A 1x1 Conv on a 1x1 map (cdcgan's noise injection) is a Gemm too: ORT would wrap it in NCHWc reorders.

A layer with few output channels (the last: 64 -> 1) stays a ConvTranspose, which is faster there.
When it reads an interleaved phase tensor (through elementwise activations only), the interleave is
folded into it instead: DepthToSpace costs ~1 ns per value on this CPU, as much as a Conv layer, and
a stride-s2 ConvTranspose of the interleaved map equals a stride-s1*s2 ConvTranspose of the phases
with kernel s2*(s1-1)+k (phase (ah, aw) of channel c holds w[c] at offset (s2*ah, s2*aw)).

Last, activations that follow a layout op (Reshape, Slice, DepthToSpace, Concat) are moved before it,
onto each producer, where ORT fuses them into the Conv or Gemm (FusedConv, FusedGemm) instead of
running one more pass over the tensor.
The FLOPs of the original graph are recorded by the exporter before lowering.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_PHASE_CHANNELS = 8  # below this, the phase Convs' output blocks are mostly padding


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _static_shapes(graph: Any) -> dict[str, list[int | None]]:
    return {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
            for v in [*graph.value_info, *graph.input, *graph.output]}


def _phase_taps(stride: int, kernel: int, pad: int) -> list[list[int]]:
    """For each output phase r, the offsets j such that out[s*m + r] += x[m - j] * w[s*j + r + pad]."""
    return [[j for j in range(-kernel, kernel + 1) if 0 <= stride * j + r + pad < kernel] for r in range(stride)]


def _lowerable(node: Any, a: dict[str, Any], inits: dict[str, Any]) -> bool:
    return (node.op_type == "ConvTranspose" and node.input[1] in inits and a.get("group", 1) == 1
            and all(d == 1 for d in a.get("dilations", [1, 1])) and not any(a.get("output_padding", [0, 0]))
            and "output_shape" not in a and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            and len(inits[node.input[1]].dims) == 4)


class _Builder:
    def __init__(self, prefix: str) -> None:
        self.prefix, self.nodes, self.inits = prefix, [], []

    def const(self, suffix: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = f"{self.prefix}_{suffix}"
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output


def _as_gemm(b: _Builder, x: str, out: str, w: np.ndarray, bias: np.ndarray) -> None:
    cin, cout, kh, kw = w.shape  # (Cin, Cout, kh, kw)
    flat = b.node("Reshape", [x, b.const("s_in", np.array([-1, cin], np.int64))], f"{b.prefix}_flat")  # (B, Cin)
    y = b.node("Gemm", [flat, b.const("w", w.reshape(cin, cout * kh * kw)),
                        b.const("b", np.repeat(bias, kh * kw).astype(w.dtype))], f"{b.prefix}_gemm")  # (B, Cout*k*k)
    b.node("Reshape", [y, b.const("s_out", np.array([-1, cout, kh, kw], np.int64))], out)  # (B, Cout, kh, kw)


def _bias_name(node: Any) -> str:
    """A Conv/ConvTranspose node's optional third input, "" when it has none."""
    return node.input[2] if len(node.input) > 2 else ""


def _bias(node: Any, inits: dict[str, Any], cout: int, dtype: Any) -> np.ndarray:
    """The node's bias (an initializer; the caller checked), or zeros when it has none."""
    from onnx import numpy_helper

    name = _bias_name(node)
    return numpy_helper.to_array(inits[name]) if name else np.zeros(cout, dtype)


def _conv_as_gemm(node: Any, a: dict[str, Any], inits: dict[str, Any], xs: list[int | None],
                  ys: list[int | None]) -> np.ndarray | None:
    """A 1x1 Conv on a 1x1 map, as the (Cin, Cout, 1, 1) weight _as_gemm takes; else None."""
    from onnx import numpy_helper

    if not (node.op_type == "Conv" and node.input[1] in inits and xs[2:] == [1, 1] and ys[2:] == [1, 1]
            and a.get("group", 1) == 1 and not any(a.get("pads", [0, 0, 0, 0]))
            and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")):
        return None
    w = numpy_helper.to_array(inits[node.input[1]])  # (Cout, Cin, kh, kw)
    return w.transpose(1, 0, 2, 3) if w.shape[2:] == (1, 1) else None


def _as_phases(b: _Builder, x: str, out: str, w: np.ndarray, bias: np.ndarray, s: int, pads: list[int],
               in_hw: list[int], out_hw: list[int]) -> bool:
    cin, cout, kh, kw = w.shape
    taps_h, taps_w = _phase_taps(s, kh, pads[0]), _phase_taps(s, kw, pads[1])
    if any(not t for t in taps_h + taps_w):
        return False
    mh, mw = -(-out_hw[0] // s), -(-out_hw[1] // s)  # phase map size, before the crop
    bias_name = b.const("b", bias)
    phases = []
    for rh in range(s):
        for rw in range(s):
            th, tw = taps_h[rh], taps_w[rw]
            k2h, k2w = max(th) - min(th) + 1, max(tw) - min(tw) + 1
            conv_pads = [max(th), max(tw), mh - in_hw[0] - max(th) + k2h - 1, mw - in_hw[1] - max(tw) + k2w - 1]
            if min(conv_pads) < 0:
                return False
            wp = np.zeros((cout, cin, k2h, k2w), w.dtype)  # (Cout, Cin, k2h, k2w)
            for uh in range(k2h):
                for uw in range(k2w):
                    wp[:, :, uh, uw] = w[:, :, s * (max(th) - uh) + rh + pads[0], s * (max(tw) - uw) + rw + pads[1]].T
            phases.append(b.node("Conv", [x, b.const(f"w{rh}{rw}", wp), bias_name], f"{b.prefix}_phase{rh}{rw}",
                                 kernel_shape=[k2h, k2w], pads=conv_pads))  # (B, Cout, mh, mw)
    cat = b.node("Concat", phases, f"{b.prefix}_phases", axis=1)  # (B, s*s*Cout, mh, mw), phase-major = DCR
    if [s * mh, s * mw] == out_hw:
        b.node("DepthToSpace", [cat], out, blocksize=s, mode="DCR")  # (B, Cout, s*mh, s*mw)
        return True
    full = b.node("DepthToSpace", [cat], f"{b.prefix}_full", blocksize=s, mode="DCR")
    b.node("Slice", [full, b.const("start", np.array([0, 0], np.int64)), b.const("end", np.array(out_hw, np.int64)),
                     b.const("axes", np.array([2, 3], np.int64))], out)
    return True


ELEMENTWISE = ("LeakyRelu", "Relu", "Tanh", "Sigmoid")  # commute with any permutation of positions
LAYOUT = ("Reshape", "Slice", "DepthToSpace", "Concat")  # move or select values, never combine them


def _hoist_activations(nodes: list[Any], outputs: set[str]) -> list[Any]:
    """layout(x1..xn) -> act becomes layout(act(x1)..act(xn)), repeated up the chain, so each activation
    meets the Conv or Gemm that made its input. Only where every tensor involved has that one consumer
    and none is a graph output; a Slice's dropped border is then activated too, which costs nothing."""
    from onnx import helper

    while True:
        producer = {o: n for n in nodes for o in n.output}
        uses: dict[str, int] = {}
        for n in nodes:
            for i in n.input:
                uses[i] = uses.get(i, 0) + 1
        for act in nodes:
            lay = producer.get(act.input[0]) if act.op_type in ELEMENTWISE else None
            if lay is None or lay.op_type not in LAYOUT or uses[act.input[0]] != 1 or act.input[0] in outputs:
                continue
            sources = list(lay.input) if lay.op_type == "Concat" else [lay.input[0]]
            if any(src not in producer or uses[src] != 1 or src in outputs for src in sources):
                continue
            moved = []
            for k, src in enumerate(sources):
                new = helper.make_node(act.op_type, [src], [f"{src}_{act.op_type.lower()}"])
                new.attribute.extend(act.attribute)
                lay.input[k] = new.output[0]
                moved.append(new)
            lay.output[0] = act.output[0]
            at = nodes.index(lay)
            nodes = nodes[:at] + moved + [n for n in nodes[at:] if n is not act]
            break
        else:
            return nodes


def _fold_interleave(nodes: list[Any], inits: dict[str, Any], outputs: set[str]) -> list[Any]:
    """DepthToSpace(DCR) -> elementwise* -> ConvTranspose becomes elementwise* -> ConvTranspose on the phases.
    A chain whose tensors are graph outputs (outputs) is left alone: its layout would change."""
    from onnx import helper, numpy_helper

    consumers: dict[str, list[Any]] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    dropped = set()
    for d2s in [n for n in nodes if n.op_type == "DepthToSpace" and _attrs(n).get("mode", b"DCR") in (b"DCR", "DCR")]:
        chain, cur = [], d2s.output[0]
        while len(consumers.get(cur, [])) == 1 and consumers[cur][0].op_type in ELEMENTWISE:
            chain.append(consumers[cur][0])
            cur = chain[-1].output[0]
        ct = consumers.get(cur, [None])[0]
        if len(consumers.get(cur, [])) != 1 or ct.op_type != "ConvTranspose" or not _lowerable(ct, _attrs(ct), inits):
            continue
        if outputs & {d2s.output[0], *(n.output[0] for n in chain)}:
            continue
        a, s1 = _attrs(ct), _attrs(d2s)["blocksize"]
        s2, pads = list(a.get("strides", [1, 1])), list(a.get("pads", [0, 0, 0, 0]))
        w = numpy_helper.to_array(inits[ct.input[1]])  # (Cin, Cout, kh, kw)
        cin, cout, kh, kw = w.shape
        k2 = [s2[0] * (s1 - 1) + kh, s2[1] * (s1 - 1) + kw]
        wp = np.zeros((s1 * s1 * cin, cout, *k2), w.dtype)  # phases are channel blocks, DCR order
        for ah in range(s1):
            for aw in range(s1):
                block = (ah * s1 + aw) * cin
                wp[block:block + cin, :, s2[0] * ah:s2[0] * ah + kh, s2[1] * aw:s2[1] * aw + kw] = w
        name = f"{ct.output[0]}_folded_w"
        inits[name] = numpy_helper.from_array(wp, name)
        if chain:
            chain[0].input[0] = d2s.input[0]
        ct.input[0] = chain[-1].output[0] if chain else d2s.input[0]
        ct.input[1] = name
        del ct.attribute[:]
        ct.attribute.extend([helper.make_attribute("kernel_shape", k2), helper.make_attribute("pads", pads),
                             helper.make_attribute("strides", [s1 * s2[0], s1 * s2[1]])])
        dropped.add(id(d2s))
    return [n for n in nodes if id(n) not in dropped]


def lower_conv_transpose(model: Any, fold: bool = True, min_channels: int = MIN_PHASE_CHANNELS) -> tuple[Any, int]:
    """Return (model, layers rewritten). Needs static spatial shapes (shape inference already run).

    fold=False keeps the DepthToSpace before a ConvTranspose. min_channels=1 lowers every strided
    ConvTranspose, the last one too (the `phases` graph): OpenVINO's deconvolution kernel stays fp32
    under its bf16 and int8 precisions, and took 51% and 66% of cdcgan's time there (kernel_profile.py)."""
    import onnx
    from onnx import numpy_helper

    g = model.graph
    shapes, inits = _static_shapes(g), {t.name: t for t in g.initializer}
    nodes, new_inits, lowered = [], [], 0
    for node in g.node:
        a = _attrs(node)
        xs, ys = shapes.get(node.input[0]), shapes.get(node.output[0])
        if not xs or not ys or None in xs[1:] + ys[1:] or ((bias := _bias_name(node)) and bias not in inits):
            nodes.append(node)
            continue
        b = _Builder(f"{node.output[0]}_lowered")
        if (w := _conv_as_gemm(node, a, inits, xs, ys)) is not None:
            _as_gemm(b, node.input[0], node.output[0], w, _bias(node, inits, w.shape[1], w.dtype))
        elif _lowerable(node, a, inits):
            w = numpy_helper.to_array(inits[node.input[1]])  # (Cin, Cout, kh, kw)
            cout = w.shape[1]
            strides, pads = list(a.get("strides", [1, 1])), list(a.get("pads", [0, 0, 0, 0]))
            if xs[2:] == [1, 1] and strides == [1, 1] and not any(pads):
                _as_gemm(b, node.input[0], node.output[0], w, _bias(node, inits, cout, w.dtype))
            elif not (strides[0] == strides[1] > 1 and cout >= min_channels
                      and _as_phases(b, node.input[0], node.output[0], w, _bias(node, inits, cout, w.dtype),
                                     strides[0], pads, xs[2:], ys[2:])):
                nodes.append(node)
                continue
        else:
            nodes.append(node)
            continue
        nodes += b.nodes
        new_inits += b.inits
        lowered += 1
    if not lowered:
        return model, 0
    inits.update({t.name: t for t in new_inits})
    outputs = {o.name for o in g.output}
    if fold:
        nodes = _fold_interleave(nodes, inits, outputs)
    nodes = _hoist_activations(nodes, outputs)
    used = {i for n in nodes for i in n.input}
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(t for name, t in inits.items() if name in used)
    del g.value_info[:]
    return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True), lowered
