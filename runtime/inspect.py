"""`gantool inspect`: what a generator file declares (metadata, I/O, a plan's profile), torch-free.

The metadata is read and validated through the contract, and for ONNX files checked against the
graph ONNX Runtime loaded. The opset and op count need the onnx package (the export extra)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from gantool.contract import SPEC_KEY, VALIDATION_KEY, read_metadata, write_metadata
from gantool.errors import GantoolError
from gantool.extras import installed
from gantool.runtime.backends.ort import OrtBackend
from gantool.runtime.backends.trt import read_sidecar
from gantool.runtime.generator import resolve_model


def _graph_facts(path: Path) -> dict[str, Any]:
    if not installed("onnx"):
        return {"opset": None, "ops": None, "note": "opset and op count need the onnx package (the export extra)"}
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    ops = Counter(n.op_type for n in m.graph.node)
    return {"opset": next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None),
            "ops": dict(ops.most_common()), "nodes": sum(ops.values()), "ir_version": m.ir_version}


def _tuned(path: Path) -> dict[str, Any]:
    """The choices cached on this machine for this file (per precision setting), without tuning."""
    from gantool.runtime.select import base_of, siblings
    from gantool.runtime.tune import cache_key, read_cached
    from gantool.runtime.variants import TUNABLE_PRECISIONS

    if path.suffix != ".onnx" or not base_of(path).is_file():
        return {}
    files = siblings(base_of(path))  # a family member's tuning is its base file's
    out = {}
    for precision in TUNABLE_PRECISIONS:
        cached = read_cached(cache_key(files, precision, None))
        if cached is not None:
            out[precision] = {str(c.batch): {**c.candidate.to_dict(), "why": c.why} for c in cached.choices}
    return out


def describe(model: str | Path) -> dict[str, Any]:
    path = resolve_model(model)
    info: dict[str, Any] = {"file": str(path), "size_bytes": path.stat().st_size}
    if path.suffix == ".plan":
        side = read_sidecar(path)
        meta = read_metadata(side.get("metadata", {}), str(path))
        info.update(kind="tensorrt-plan", profile=side["profile"], tensorrt_version=side.get("tensorrt_version"),
                    gpu=side.get("gpu"), source_onnx_sha256=side.get("source_onnx_sha256"),
                    note="I/O as the metadata declares it (loading the engine needs TensorRT)")
        inputs, outputs = list(meta.contract.inputs), list(meta.contract.outputs)
    elif path.suffix in (".onnx", ".ort"):
        with OrtBackend(path) as b:
            meta = b.generator_metadata()  # validated, and checked against the loaded graph
            inputs, outputs = b.graph_io()
        if path.suffix == ".onnx":
            info.update(kind="onnx", **_graph_facts(path))
        else:  # a FlatBuffers file: its operators are in the required_operators.config written beside it
            info.update(kind="ort-format", note="ORT format (gantool export --format ort); its operators are listed "
                                                "in the required_operators.config written with it")
    else:
        raise GantoolError(f"{path}: unknown file type; allowed: .onnx, .ort, .plan.")
    info.update(precision=meta.precision, graph=meta.graph, spec=meta.spec.to_dict(), family=meta.family,
                validations=[v.to_dict() for v in meta.validations], tuned=_tuned(path),
                metadata=write_metadata(meta),
                inputs=[{"name": t.name, "dtype": t.dtype, "shape": [d if isinstance(d, int) else str(d) for d in t.shape]}
                        for t in inputs],
                outputs=[{"name": t.name, "dtype": t.dtype, "shape": [d if isinstance(d, int) else str(d) for d in t.shape]}
                         for t in outputs])
    return info


def describe_text(info: dict[str, Any]) -> str:
    s = info["spec"]
    size = info["size_bytes"] / 2 ** 20
    head = f"{info['file']} ({info['kind']}, {info['precision']}, {size:.2f} MiB"
    if info.get("opset") is not None:
        head += f", opset {info['opset']}, {info['nodes']} nodes"
    lines = [head + ")",
             f"  model: {s['arch']}  latent {s['latent_dim']} ({s['noise']} noise)  classes {s['num_classes']} "
             f"(conditional: {str(s['conditional']).lower()})  image {s['channels']}x{s['image_size']}x"
             f"{s['image_size']}  range {s['output_range']}  graph {info['graph']}"]
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            lines.append(f"  {kind[:-1]:6} {t['name']}: {t['dtype']} {t['shape']}")
    if info.get("ops"):
        lines.append("  ops: " + ", ".join(f"{k} {v}" for k, v in info["ops"].items()))
    if info.get("profile"):
        p = info["profile"]
        lines.append(f"  profile: batch min {p['min_batch']} opt {p['opt_batch']} max {p['max_batch']}; "
                     f"TensorRT {info.get('tensorrt_version')} on {info.get('gpu')}")
    for k, v in sorted(info["metadata"].items()):
        if k not in (SPEC_KEY, VALIDATION_KEY):  # shown above and below, field by field
            lines.append(f"  {k} = {v}")
    for v in info.get("validations", []):
        checks = ", ".join(f"{k} {x:.4g}" for k, x in sorted(v["checks"].items()))
        lines.append(f"  validated: {v['precision']} on {v['engine']}: {'passed' if v['passed'] else 'FAILED'} "
                     f"({checks}; on {v['cpu']})")
    for precision, routes in info.get("tuned", {}).items():
        for b, c in routes.items():
            lines.append(f"  tuned here (precision {precision}): batch {b}: {c['engine']} {c['precision']} "
                         f"{Path(c['file']).name} x{c['threads']} ({c['why']})")
    if info["kind"] == "onnx" and not info.get("tuned"):
        lines.append("  tuned here: not yet (the first Generator.load, or gantool tune, measures it)")
    if info.get("note"):
        lines.append(f"  note: {info['note']}")
    return "\n".join(lines)
