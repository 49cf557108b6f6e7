"""`gantool sample`, `inspect` and `bench`: the runtime's commands (no torch needed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from gantool.cli.app import SEED, cli, write_json
from gantool.contract import GRID_COLUMNS, MAX_BATCH
from gantool.errors import GantoolError
from gantool.fileio import refuse_overwrite
from gantool.spec import ZOO_NAMES

_LABEL_PART = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$")
MODEL_HELP = f"a .onnx/.ort/.plan file or a zoo name ({', '.join(ZOO_NAMES)})"


def parse_labels(text: str | None, limit: int = MAX_BATCH) -> list[int] | None:
    """'0-9' -> 0..9; '3,3,7' -> [3, 3, 7]; ranges and lists mix: '0-2,7'. At most `limit` labels,
    counted before any list is built."""
    if text is None:
        return None
    spans = []
    for part in text.split(","):
        m = _LABEL_PART.match(part)
        if m is None:
            raise GantoolError(f"--labels {text!r}: {part.strip()!r} is not an integer or a range; allowed forms: "
                               f"0-9, 3,3,7 or 0-2,7.")
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if hi < lo:
            raise GantoolError(f"--labels {text!r}: the range {lo}-{hi} runs backwards; write it low-high.")
        spans.append((lo, hi))
    count = sum(hi - lo + 1 for lo, hi in spans)
    if count > limit:
        raise GantoolError(f"--labels {text!r} asks for {count} images; allowed: at most {limit}.")
    return [k for lo, hi in spans for k in range(lo, hi + 1)]


def parse_pair(text: str | None) -> tuple[int, int] | None:
    """'3:8' -> (3, 8): the two classes of --interpolate (range-checked by the model)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(-?\d+)\s*:\s*(-?\d+)\s*", text)
    if m is None:
        raise GantoolError(f"--interpolate {text!r}: allowed form A:B, two class labels, e.g. 3:8.")
    return int(m.group(1)), int(m.group(2))


def _engine_choice() -> click.Choice:
    from gantool.runtime.backends import ENGINES

    return click.Choice(list(ENGINES))


PRECISION_HELP = ("fp32: exact (the default); auto: any variant validated at export (bf16, int8, other graphs), "
                  "the fastest per batch size on this machine; bf16 or int8: only that (docs/runtime.md)")


def _precision_choice() -> click.Choice:
    from gantool.runtime.variants import RUNTIME_PRECISIONS

    return click.Choice(list(RUNTIME_PRECISIONS))


def tune_progress() -> Any:
    """A stderr progress bar for a first tuning (a cached choice prints nothing)."""
    state: dict[str, Any] = {}

    def update(what: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc="tuning (once per machine)", unit="step", leave=False)
        bar.set_postfix_str(what)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


@cli.command("sample")
@click.option("--model", required=True, metavar="FILE|NAME", help=MODEL_HELP)
@click.option("--labels", default=None,
              help="conditional models: one image per label, e.g. 0-9 or 3,3,7 (as Generator.sample(labels=...)) "
                   "[default: every class]")
@click.option("--per-label", type=click.IntRange(1, MAX_BATCH), default=None,
              help=f"conditional models: this many images per label, one row each [default: {GRID_COLUMNS} with "
                   f"every class, 1 with --labels]")
@click.option("--n", type=click.IntRange(1, MAX_BATCH), default=None,
              help="number of images; conditional models cycle labels 0..K-1 (as Generator.sample(n=...)) "
                   "[default: 64 for unconditional models]")
@click.option("--seed", type=SEED, default=0, show_default=True, help="same seed, same images, on every engine")
@click.option("--engine", type=_engine_choice(), default="auto", show_default=True, help="the runtime's engine")
@click.option("--precision", type=_precision_choice(), default="fp32", show_default=True, help=PRECISION_HELP)
@click.option("--truncation", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="keep the central share t of each noise coordinate (Gaussian z redrawn outside it, uniform z "
                   "scaled by t): fewer odd digits, less variety; 1: none")
@click.option("--interpolate-z", is_flag=True,
              help="walk between two noise vectors per row (great circle for Gaussian z, straight line for uniform), "
                   "each row's label fixed: a grid of rows x --steps, or a .gif")
@click.option("--interpolate", "interpolate", default=None, metavar="A:B",
              help="conditional models: morph from class A to class B, each row one z, its class weights moving "
                   "in --steps (runs the model's class-weight graph NAME.mix.onnx): a grid of rows x steps, or a .gif")
@click.option("--steps", type=click.IntRange(2, 1024), default=None,
              help="--interpolate / --interpolate-z: images per path, both ends included [default: 10]")
@click.option("--rows", type=click.IntRange(1, 1024), default=None,
              help="--interpolate / --interpolate-z: paths, one per row [default: 8; --interpolate-z: one per "
                   "--labels entry if given]")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="samples.png", show_default=True,
              help=".png for a grid, .npy for the raw uint8 images, .gif for an interpolation")
def sample_cmd(model: str, labels: str | None, per_label: int | None, n: int | None, seed: int, engine: str,
               precision: str, truncation: float, interpolate: str | None, interpolate_z: bool, steps: int | None,
               rows: int | None, output: str) -> None:
    """Sample images with the runtime (no torch needed): a PNG grid, an .npy of uint8 images, or an
    interpolation (grid or GIF)."""
    from gantool.export.cache import resolve_model
    from gantool.runtime.sample import run_sample

    pair = parse_pair(interpolate)
    result = run_sample(resolve_model(model, mix=pair is not None), output, parse_labels(labels), per_label, n,
                        seed, engine, truncation=truncation, interpolate_z=interpolate_z, steps=steps, rows=rows,
                        interpolate=pair, precision=precision, progress=tune_progress())
    click.echo(result.text())


@cli.command("inspect")
@click.option("--model", default=None, metavar="FILE|NAME", help=MODEL_HELP)
@click.argument("file", required=False, metavar="[FILE]")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="write the description here")
def inspect_cmd(model: str | None, file: str | None, json_path: str | None) -> None:
    """Print a generator's metadata, precision, opset, size, ops, inputs and outputs (and a .plan's profile).

    The positional FILE is the 0.1 spelling of --model, kept for one release."""
    from gantool.runtime.inspect import describe, describe_text

    if (model is None) == (file is None):
        raise GantoolError("give the generator as --model FILE|NAME (the positional FILE is deprecated).")
    if file is not None:
        click.echo("gantool: note: `gantool inspect FILE` is deprecated; use `gantool inspect --model FILE`.",
                   err=True)
    target = str(model if model is not None else file)
    refuse_overwrite({"--json": json_path}, {"--model": target})
    info = describe(target)
    click.echo(describe_text(info))
    write_json(json_path, info)


@cli.command("bench")
@click.option("--engine", "engines", default="runtime,ort,torch", show_default=True,
              help="comma-separated: runtime, ort, ort-plain, ort-fp16, ort-int8, ort-int8u, openvino, openvino-bf16, "
                   "torch, torch-bf16, torch-compile, trt, ort-cuda, ort-trt")
@click.option("--model", required=True, metavar="FILE|NAME", help="zoo name, checkpoint, .onnx, .ort or .plan")
@click.option("--graph", "graphs", default="plain", show_default=True,
              help="GPU engines (trt, ort-cuda, ort-trt): the graph form(s) they run, comma-separated: plain "
                   "(torch's ConvTranspose, which TensorRT runs natively), lowered (the CPU rewrite); each form "
                   "other than plain is its own row, ENGINE-FORM (trt-lowered)")
@click.option("--batch", "batches", default="1,8,64,256", show_default=True,
              help=f"comma-separated batch sizes, each 1..{MAX_BATCH}")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="[default: all cores; the runtime engine then uses its tuned choice]")
@click.option("--precision", type=_precision_choice(), default="fp32", show_default=True,
              help="what the runtime engine may run in: " + PRECISION_HELP)
@click.option("--rounds", type=click.IntRange(1, 10000), default=10, show_default=True, help="interleaved rounds")
@click.option("--warmup", "warmup_s", type=click.FloatRange(0, 600), default=None, metavar="SECONDS",
              help="untimed runs per engine and batch before the rounds, like trtexec's --warmUp [default: 0.3]")
@click.option("--duration", "duration_s", type=click.FloatRange(0, 3600, min_open=True), default=None,
              metavar="SECONDS", help="timed seconds per engine and batch, spread over the rounds, like trtexec's "
                                      "--duration [default: 0.1 per round]")
@click.option("--cuda-graph", "cuda_graphs", is_flag=True,
              help="trt: capture each batch size's enqueue as a CUDA graph and launch that, like trtexec's "
                   "--useCudaGraph (refused without the trt engine)")
@click.option("--no-cold-start", is_flag=True, help="skip the fresh-process cold start and peak memory probe")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="write the results here")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="PNG plot (needs the bench extra)")
def bench_cmd(engines: str, model: str, graphs: str, batches: str, threads: int | None, precision: str, rounds: int,
              warmup_s: float | None, duration_s: float | None, cuda_graphs: bool, no_cold_start: bool,
              json_path: str | None, output: str | None) -> None:
    """Latency and throughput of engines side by side, interleaved, with the roofline."""
    from gantool.benchmarks.bench import (
        parse_batches,
        parse_engines,
        parse_graphs,
        plot,
        run_bench,
        table,
    )

    names, sizes, forms = parse_engines(engines), parse_batches(batches), parse_graphs(graphs)
    if precision != "fp32" and "runtime" not in names:
        raise GantoolError(f"--precision sets what the runtime engine may run in, and --engine {engines} has no "
                           f"runtime; add it, or use ort-int8 / openvino-bf16 / torch-bf16 for fixed precisions.")
    if cuda_graphs and not any(n.split("-")[0] == "trt" for n in names):
        raise GantoolError(f"--cuda-graph applies to the trt engine, and --engine {engines} has none; add trt.")
    refuse_overwrite({"--json": json_path, "-o": output}, {"--model": model})
    refuse_overwrite({"-o": output}, {"--json": json_path})  # the plot would replace the results
    res = run_bench(model, names, sizes, threads, rounds, cold=not no_cold_start, precision=precision, graphs=forms,
                    warmup_s=warmup_s, duration_s=duration_s, cuda_graphs=cuda_graphs)

    click.echo(table(res))
    if output:
        click.echo(plot(res, output))
    write_json(json_path, res.to_dict())


@cli.command("tune")
@click.option("--model", default=None, metavar="FILE|NAME",
              help="tune this model now, replacing its cached choice: " + MODEL_HELP)
@click.option("--precision", type=click.Choice(["fp32", "auto"]), default=None,
              help="fp32: among exact candidates (graph form, engine, threads) [the default with --model]; auto: "
                   "every validated variant too. With --show or --clear: only that setting's entries. bf16 and "
                   "int8 pin the precision, which skips tuning")
@click.option("--show", is_flag=True, help="list the choices cached on this machine")
@click.option("--clear", is_flag=True, help="delete the cached choices (the next load tunes again)")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="write the result here")
def tune_cmd(model: str | None, precision: str | None, show: bool, clear: bool, json_path: str | None) -> None:
    """Time a model's validated variants x engines x threads on this machine and cache the fastest per batch.

    Generator.load does this on first use; GANTOOL_TUNE=off keeps the default everywhere."""
    from gantool.runtime import tune

    if sum((model is not None, show, clear)) != 1:
        raise GantoolError("give exactly one of --model (tune it now), --show or --clear.")
    refuse_overwrite({"--json": json_path}, {"--model": model})
    if clear:
        removed = tune.clear_cache(precision)
        click.echo(f"removed {removed} cached choice(s){f' for precision {precision}' if precision else ''} from "
                   f"{tune.cache_dir() / 'tune'}")
        write_json(json_path, {"removed": removed, "folder": str(tune.cache_dir() / "tune")})
        return
    if show:
        entries = tune.cached_entries(precision)
        for e in entries:
            if e.get("unreadable"):
                click.echo(f"{e['file']}: unreadable (the next load tunes again)")
                continue
            routes = "; ".join(f"batch {b}: {c['engine']} {c['precision']} {Path(c['file']).name} x{c['threads']}"
                               for b, c in e["choices"].items())
            click.echo(f"{', '.join(e['models'])} in {e['folder']} ({e['precision']}, {e['cpu_model']}, "
                       f"{e['tuned_at']}): {routes}")
        if not entries:
            click.echo(f"no cached choices in {tune.cache_dir() / 'tune'}")
        write_json(json_path, entries)
        return
    from gantool.export.cache import resolve_model
    from gantool.runtime.generator import Generator

    with Generator.load(resolve_model(str(model)), precision=precision or "fp32", progress=tune_progress(),
                        retune=True) as g:
        tuning = g.selection.tuning
        if tuning is None:
            click.echo(f"nothing to tune: {g.selection.text()}")
        else:
            click.echo(tuning.text())
        write_json(json_path, g.choice if tuning is None else {**g.choice, **tuning.to_dict()})
