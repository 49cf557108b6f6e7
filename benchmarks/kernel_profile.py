"""Which kernels an engine runs, and where its time goes: what limits a precision variant, measured.

    python benchmarks/kernel_profile.py --model cdcgan --batch 256 [--precision fp32,bf16,int8] [--json F]

OpenVINO's per-node profile names the kernel implementation it picked (`exec_type`, e.g.
`brgconv_avx512_amx_bf16`, `jit_avx512_fp32`, `ref_any`): whether a layer runs on the bf16/int8
matrix units, in fp32, or in a reference kernel, and how long layout conversions (Reorder) take. ONNX
Runtime's profiler gives the same per-op split for its fp32 and int8 graphs. Times are summed over
`--calls` calls after a warm-up, and shares are of the summed node time.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import click

from gantool.benchmarks.bench import feeds_for
from gantool.benchmarks.roofline import machine_info
from gantool.fileio import atomic_write_json


def openvino_profile(path: Path, compute: str | None, feeds: dict[str, Any], threads: int, calls: int) -> dict:
    import openvino as ov

    from gantool.runtime.backends.openvino import compile_config

    config = {**compile_config(threads, compute=compute), "PERF_COUNT": True}
    compiled = ov.Core().compile_model(ov.Core().read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()
    request.infer(feeds)
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for _ in range(calls):
        request.infer(feeds)
        for node in request.get_profiling_info():
            if node.status.name == "EXECUTED":
                totals[node.node_type, node.exec_type] += node.real_time.total_seconds() * 1e3 / calls
    return _summary(totals)


def ort_profile(path: Path, feeds: dict[str, Any], threads: int, calls: int) -> dict:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="gantool-prof-") as tmp:
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.enable_profiling, so.profile_file_prefix = True, os.path.join(tmp, "p")
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        s.run(None, feeds)
        for _ in range(calls):
            s.run(None, feeds)
        trace = json.loads(Path(s.end_profiling()).read_text())
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for ev in trace:
        args = ev.get("args", {})
        if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
            totals[args.get("op_name", "?"), args.get("provider", "")] += ev["dur"] / 1e3 / (calls + 1)
    return _summary(totals)


def _summary(totals: dict[tuple[str, str], float]) -> dict:
    whole = sum(totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    rows = [{"op": op, "kernel": kernel, "ms": ms, "share": ms / whole} for (op, kernel), ms in ranked]
    return {"node_ms": whole, "rows": rows}


@click.command()
@click.option("--model", default="cdcgan", show_default=True,
              help="a zoo name (its shipped or cached family) or the base .onnx of a --variants family")
@click.option("--batch", type=click.IntRange(1, 4096), default=256, show_default=True)
@click.option("--precision", "precisions", default="fp32,bf16,int8", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default=True)
@click.option("--calls", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--top", type=click.IntRange(min=1), default=8, show_default=True, help="rows printed per engine")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
def main(model: str, batch: int, precisions: str, threads: int, calls: int, top: int, json_path: str | None) -> None:
    from gantool.export.cache import resolve_model
    from gantool.runtime.select import file_metadata, siblings

    base = resolve_model(model)
    metas = {p: file_metadata(p) for p in siblings(base)}
    files = {(m.precision, m.graph): p for p, m in metas.items()}  # the family, by precision and graph form
    feeds = feeds_for(metas[base].spec, batch)
    out: dict[str, Any] = {"model": model, "batch": batch, "threads": threads, "machine": machine_info(), "runs": {}}
    wanted = precisions.split(",")
    runs = [(p, e, files.get((p if p != "bf16" else "fp32", g)), g, "bf16" if p == "bf16" else None)
            for p, e, g in (("fp32", "ort", "lowered"), ("fp32", "openvino", "lowered"), ("fp32", "openvino", "phases"),
                            ("bf16", "openvino", "lowered"), ("bf16", "openvino", "phases"),
                            ("int8", "ort", "phases"), ("int8", "openvino", "phases"))
            if p in wanted]
    for precision, engine, path, graph, compute in runs:
        if path is None:
            click.echo(f"{precision} {engine}: no {graph} file in {model}'s family (gantool export --variants)")
            continue
        prof = (openvino_profile(path, compute, feeds, threads, calls) if engine == "openvino"
                else ort_profile(path, feeds, threads, calls))
        out["runs"][f"{precision} {engine} {graph}"] = prof
        click.echo(f"{precision} on {engine} ({path.name}), batch {batch}: {prof['node_ms']:.2f} ms of node time")
        for r in prof["rows"][:top]:
            click.echo(f"  {r['share']:6.1%} {r['ms']:8.3f} ms  {r['op']:<18} {r['kernel']}")
    if json_path:
        atomic_write_json(json_path, out)


if __name__ == "__main__":
    main()
