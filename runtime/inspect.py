"""`gantool inspect`: what a generator file declares (metadata, I/O, a plan's profile), torch-free."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gantool.errors import GantoolError


def describe(file: str) -> dict[str, Any]:
    path = Path(file)
    if not path.is_file():
        raise GantoolError(f"{file}: no such file.")
    if path.suffix == ".plan":
        from gantool.runtime.backends.trt import read_sidecar

        side = read_sidecar(path)
        return {"file": str(path), "kind": "tensorrt-plan", "metadata": side.get("metadata", {}),
                "inputs": side.get("inputs", []), "outputs": side.get("outputs", []),
                "profile": side.get("profile"), "precision": side.get("precision"),
                "tensorrt_version": side.get("tensorrt_version"), "gpu": side.get("gpu"),
                "source_onnx_sha256": side.get("source_onnx_sha256")}
    if path.suffix != ".onnx":
        raise GantoolError(f"{file}: unknown file type; allowed: .onnx, .plan.")
    from gantool.runtime.backends.ort import OrtBackend
    from gantool.runtime.generator import read_onnx_metadata, spec_from_metadata

    with OrtBackend(path) as b:
        meta = read_onnx_metadata(b.session)
        spec_from_metadata(meta, file)  # raises when it is not a gantool generator
        io = {kind: [{"name": t.name, "dtype": t.type, "shape": [d if isinstance(d, int) else str(d) for d in t.shape]}
                     for t in ts] for kind, ts in (("inputs", b.session.get_inputs()),
                                                   ("outputs", b.session.get_outputs()))}
    return {"file": str(path), "kind": "onnx", "metadata": meta, **io}


def describe_text(info: dict[str, Any]) -> str:
    lines = [f"{info['file']} ({info['kind']})"]
    spec = json.loads(info["metadata"].get("gantool.spec", "{}"))
    lines.append(f"  model: {spec.get('arch')}  latent {spec.get('latent_dim')}  classes {spec.get('num_classes')} "
                 f"(conditional: {spec.get('conditional')})  image {spec.get('channels')}x{spec.get('image_size')}x"
                 f"{spec.get('image_size')}  range {spec.get('output_range')}  noise {spec.get('noise')}")
    for k, v in sorted(info["metadata"].items()):
        if k != "gantool.spec":
            lines.append(f"  {k} = {v}")
    for kind in ("inputs", "outputs"):
        for t in info.get(kind, []):
            lines.append(f"  {kind[:-1]:6} {t['name']}: {t.get('dtype')} {t.get('shape', '')}")
    if info.get("profile"):
        p = info["profile"]
        lines.append(f"  profile: batch min {p['min_batch']} opt {p['opt_batch']} max {p['max_batch']}; "
                     f"{info.get('precision')} TensorRT {info.get('tensorrt_version')} on {info.get('gpu')}")
    return "\n".join(lines)
