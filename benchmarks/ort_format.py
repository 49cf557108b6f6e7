"""ORT-format sizes and operator lists of every zoo model (gantool export --format ort), for docs/mobile.md.

    python benchmarks/ort_format.py --models gan cgan cdcgan cwgan dcgan cgan-in --out benchmarks/results/ort_format

Exports each model's fp32, fp16 and int8 graphs (and the mix graph of a conditional one) through the
same path as the CLI, checks every .ort against its .onnx, and writes OUT.json and OUT.md: per file the
.onnx and .ort sizes, the parity verdict and worst error, and the operators a reduced build must include.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from gantool.fileio import atomic_write_bytes, atomic_write_json


def measure(models: list[str], samples: int | None, skipped: dict[str, str]) -> list[dict[str, Any]]:
    """One row per file written; skipped gets the variants that failed their export checks, and why."""
    from gantool.export.mobile import run_ort_export

    rows = []
    for model in models:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="gantool-ort-bench-") as tmp:
            result = run_ort_export(model, tmp, semantic_samples=samples, required=False)
            skipped.update({f"{model} {p}": why for p, why in result.not_written.items()})
            for m in result.models:
                worst = max(c.max_abs for c in m.parity.comparisons)
                rows.append({"model": model, "file": m.path.name, "precision": m.onnx.precision,
                             "condition": m.onnx.metadata.condition, "onnx_bytes": m.onnx_bytes,
                             "ort_bytes": m.path.stat().st_size, "parity_passed": m.parity.passed,
                             "parity_max_abs": worst, "operators": m.operators})
        print(f"{model}: {time.perf_counter() - start:.0f} s", flush=True)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| file | .onnx MiB | .ort MiB | .ort against .onnx (max abs) | operators |", "|---|---|---|---|---|"]
    for r in rows:
        verdict = "passed" if r["parity_passed"] else "FAILED"
        lines.append(f"| {r['file']} | {r['onnx_bytes'] / 2**20:.2f} | {r['ort_bytes'] / 2**20:.2f} | {verdict} "
                     f"({r['parity_max_abs']:.1e}) | {len(r['operators'])}: {', '.join(r['operators'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    from gantool.cpu import cpu_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["gan", "cgan", "cdcgan", "cwgan", "dcgan", "cgan-in"])
    ap.add_argument("--samples", type=int, default=None, help="judge-check samples of fp16/int8 [default: 2000]")
    ap.add_argument("--out", default="benchmarks/results/ort_format")
    args = ap.parse_args()
    import onnxruntime

    skipped: dict[str, str] = {}
    rows = measure(args.models, args.samples, skipped)
    cpu = cpu_info()
    atomic_write_json(f"{args.out}.json", {"cpu": cpu.model, "flags": cpu.notable_flags,
                                          "onnxruntime": onnxruntime.__version__, "rows": rows,
                                          "not_written": skipped})
    text = markdown(rows) + "".join(f"\n{k}: not written: {why}\n" for k, why in skipped.items())
    atomic_write_bytes(f"{args.out}.md", text.encode())
    print(text)


if __name__ == "__main__":
    main()
