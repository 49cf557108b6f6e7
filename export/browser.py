"""`gantool export --format web`: a folder a static file server can serve as a sampling page.

The folder holds NAME.onnx (and NAME.mix.onnx for conditional models), exported and validated as any
export is, the browser runtime (gantool.js + noise.js, export/web/), the demo page, a package.json that
pins onnxruntime-web for `npm ci`, and gantool.json: the manifest gantool.js reads, made from the ONNX
file's own metadata (spec, noise function, I/O names), so nothing about the model is written twice.
The manifest is written last and names every model file's size and digest: a folder whose update was
interrupted never passes for a complete one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import logging
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from gantool.contract import CLASS_WEIGHTS, LABELS, GeneratorMetadata
from gantool.errors import GantoolError
from gantool.export.onnx import DEFAULT_OPSET
from gantool.export.run import ExportResult, run_export
from gantool.fileio import atomic_write_bytes, atomic_write_json, check_own_folder
from gantool.noise import NOISE_FUNCTION

log = logging.getLogger(__name__)

MANIFEST = "gantool.json"
MANIFEST_FORMAT = "gantool-web/1"  # = MANIFEST_FORMAT in export/web/gantool.js
ASSETS_DIR = Path(__file__).with_name("web")
ASSETS = ("gantool.js", "noise.js", "index.html", "package.json", "package-lock.json", "vendor.mjs")
WEB_MAX_N = 1024  # images per sample() call in a page (gantool.js runs them 64 rows at a time)
DEFAULT_FOLDER = "site"


@dataclass
class WebExport:
    folder: Path
    models: list[ExportResult] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"{r.path.name}:\n{r.text()}" for r in self.models]
        sizes = ", ".join(f"{r.path.name} {r.path.stat().st_size / 2 ** 20:.2f} MiB" for r in self.models)
        lines.append(f"wrote {self.folder}/ ({sizes}; onnxruntime-web {ort_web_version()}); open it with:\n"
                     f"  cd {self.folder} && npm ci && python3 -m http.server 8000   # then http://127.0.0.1:8000/")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "models": [r.to_dict() for r in self.models]}


def ort_web_version() -> str:
    """The onnxruntime-web version the folder's package.json pins (one place: export/web/package.json)."""
    return str(json.loads((ASSETS_DIR / "package.json").read_text())["dependencies"]["onnxruntime-web"])


def model_entry(result: ExportResult) -> dict[str, Any]:
    data = result.path.read_bytes()
    contract = result.metadata.contract
    return {"file": result.path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "inputs": contract.input_names, "outputs": contract.output_names,
            "condition": result.metadata.condition, "graph": result.metadata.graph}


def manifest(meta: GeneratorMetadata, model: dict[str, Any], mix: dict[str, Any] | None) -> dict[str, Any]:
    import numpy

    return {"format": MANIFEST_FORMAT, "spec": meta.spec.to_dict(), "noise_function": NOISE_FUNCTION,
            "numpy": numpy.__version__, "gantool_version": meta.gantool_version, "precision": meta.precision,
            "family": meta.family, "max_n": WEB_MAX_N, "onnxruntime_web": ort_web_version(), "model": model,
            "mix": mix}


def run_web_export(model: str, output: str | None = None, precision: str = "fp32", opset: int = DEFAULT_OPSET,
                   lower: bool = True, seed: int = 0) -> WebExport:
    """Export and validate the model (and its mix graph), then lay out the folder, manifest last."""
    if precision != "fp32":
        raise GantoolError(f"--format web writes fp32 graphs, not {precision}: onnxruntime-web's WebAssembly "
                           f"kernels compute in fp32, so a reduced graph only adds casts.", note="drop --precision.")
    folder = Path(output or DEFAULT_FOLDER)
    check_own_folder(folder, MANIFEST, "--format web")  # an earlier web folder is updated file by file
    previous = _manifest_files(folder)
    with tempfile.TemporaryDirectory(prefix="gantool-web-") as tmp:
        base = run_export(model, f"{tmp}/", "fp32", opset, lower=lower, seed=seed)
        models = [base]
        if base.spec.conditional:
            models.append(run_export(model, f"{tmp}/", "fp32", opset, lower=lower, seed=seed, condition=CLASS_WEIGHTS))
        entries = [model_entry(r) for r in models]
        for r in models:  # validated: each lands by an atomic write
            atomic_write_bytes(folder / r.path.name, r.path.read_bytes())
            r.path = folder / r.path.name
    for name in ASSETS:
        atomic_write_bytes(folder / name, (ASSETS_DIR / name).read_bytes())
    by_condition = {e["condition"]: e for e in entries}
    atomic_write_json(folder / MANIFEST, manifest(base.metadata, by_condition[LABELS], by_condition.get(CLASS_WEIGHTS)))
    for stale in previous - {e["file"] for e in entries}:  # an earlier export's model, no longer named
        (folder / stale).unlink(missing_ok=True)
    return WebExport(folder, models)


def _manifest_files(folder: Path) -> set[str]:
    """The model files an earlier export's manifest names (plain names inside the folder only)."""
    try:
        old = json.loads((folder / MANIFEST).read_text())
        names = {old[k]["file"] for k in ("model", "mix") if isinstance(old.get(k), dict)}
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {n for n in names if isinstance(n, str) and n == Path(n).name and n.endswith(".onnx")}


class _Handler(http.server.SimpleHTTPRequestHandler):
    isolate = False

    def end_headers(self) -> None:
        if self.isolate:  # cross-origin isolation: what SharedArrayBuffer, so WebAssembly threads, need
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def static_server(root: str | Path, isolate: bool = False) -> Iterator[str]:
    """Serve a folder on a free port of 127.0.0.1 (the tests and the web benchmark); yields its URL.
    isolate: send the COOP/COEP headers under which onnxruntime-web may use threads."""
    handler = type("Handler", (_Handler,), {"isolate": isolate})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
