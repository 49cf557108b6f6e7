"""What export/lower.py and the runtime's CPU chunking buy, side by side on one machine.

    python benchmarks/lowering.py --model cdcgan --model dcgan --threads 2 --json results/lowering.json

For each model: ONNX Runtime on the graph as torch exported it (--no-lower), on the lowered graph,
and on the lowered graph with large batches run in the runtime's chunks; interleaved by
gantool.benchmarks.bench.measure, so noise hits all three alike. Needs the export extra.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from gantool.benchmarks.bench import measure, script_options
from gantool.benchmarks.engines import Engine, backend_engine
from gantool.benchmarks.roofline import machine_info
from gantool.export.run import run_export
from gantool.fileio import atomic_write_bytes
from gantool.runtime.backends import open_backend
from gantool.runtime.backends.base import infer_split


def engines_for(model: str, folder: Path, threads: int) -> tuple[dict[str, Engine], object, int | None]:
    plain = run_export(model, str(folder / f"{model}.plain.onnx"), lower=False).path
    lowered = run_export(model, str(folder / f"{model}.onnx")).path
    out: dict[str, Engine] = {}
    for name, path in (("plain", plain), ("lowered", lowered)):
        out[name] = backend_engine(open_backend(path, "ort", threads), name)
    c = open_backend(lowered, "ort", threads)  # the runtime's own backend, with the chunk it picks
    out["lowered+chunks"] = Engine("lowered+chunks", lambda feeds: infer_split(c, feeds), c.deactivate)
    return out, c.generator_metadata().spec, c.chunk


@click.command()
@script_options(["cdcgan", "dcgan"], "1,64,256")
def main(models: tuple[str, ...], batches: list[int], threads: int, rounds: int, json_path: str | None) -> None:
    report = {}
    with tempfile.TemporaryDirectory(prefix="gantool-lowering-") as tmp:
        for model in models:
            engines, spec, chunk = engines_for(model, Path(tmp), threads)
            stats = measure(engines, spec, batches, rounds)
            for e in engines.values():
                e.close()
            report[model] = {"chunk": chunk, "stats": [s.__dict__ for s in stats]}
            click.echo(f"{model} (ONNX Runtime CPU, {threads} threads; runtime chunk {chunk}): p50 ms")
            click.echo(f"  {'batch':>6} " + " ".join(f"{n:>15}" for n in engines) + "  plain/lowered+chunks")
            for b in batches:
                row = {s.engine: s.p50_ms for s in stats if s.batch == b}
                click.echo(f"  {b:>6} " + " ".join(f"{row[n]:>15.3f}" for n in engines)
                           + f"  {row['plain'] / row['lowered+chunks']:>19.2f}x")
    if json_path:
        atomic_write_bytes(json_path, json.dumps({"threads": threads, "machine": machine_info(), "models": report},
                                                 indent=1).encode())


if __name__ == "__main__":
    main()
