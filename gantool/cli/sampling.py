"""`gantool sample`, `inspect` and `bench`: the runtime's commands (no torch needed)."""

from __future__ import annotations


import click

from gantool.cli.app import cli, write_json
from gantool.errors import GantoolError


def parse_labels(text: str | None) -> list[int] | None:
    """'0-9' -> 0..9; '3,3,7' -> [3, 3, 7]; ranges and lists mix: '0-2,7'."""
    if text is None:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise GantoolError(f"--labels {text!r} is not a list of integers; allowed forms: 0-9, 3,3,7 or 0-2,7.") from None
    if not out:
        raise GantoolError(f"--labels {text!r} names no label.")
    return out


@cli.command("sample")
@click.option("--model", required=True, metavar="FILE|NAME", help="a .onnx/.plan file or a zoo name")
@click.option("--labels", default=None, help="conditional grid rows: 0-9 or 3,3,7 [default: every class]")
@click.option("--per-label", type=click.IntRange(min=1), default=8, show_default=True, help="grid columns per label")
@click.option("--n", type=click.IntRange(min=1), default=64, show_default=True, help="images (unconditional models)")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--engine", type=click.Choice(["auto", "ort", "ort-cuda", "ort-trt", "trt", "openvino"]), default="auto",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="samples.png", show_default=True,
              help=".png for a grid, .npy for the raw uint8 images")
def sample_cmd(model: str, labels: str | None, per_label: int, n: int, seed: int, engine: str, output: str) -> None:
    """Sample images with the runtime (no torch needed): a PNG grid or an .npy of uint8 images."""
    from gantool.runtime.sample import run_sample

    path, shape = run_sample(model, output, parse_labels(labels), per_label, n, seed, engine)
    click.echo(f"wrote {path} ({' x '.join(map(str, shape))})")


@cli.command("inspect")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
def inspect_cmd(file: str, json_path: str | None) -> None:
    """Print a generator's metadata, inputs and outputs (and a .plan's profile)."""
    from gantool.runtime.inspect import describe, describe_text

    info = describe(file)
    click.echo(describe_text(info))
    write_json(json_path, info)


@cli.command("bench")
@click.option("--engine", "engines", default="runtime,ort,torch", show_default=True,
              help="comma-separated: runtime, ort, ort-plain, ort-fp16, ort-int8, openvino, torch, torch-compile, "
                   "trt, ort-cuda, ort-trt")
@click.option("--model", required=True, metavar="FILE|NAME", help="zoo name, checkpoint, .onnx or .plan")
@click.option("--batch", "batches", default="1,8,64,256", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="[default: all cores]")
@click.option("--rounds", type=click.IntRange(min=1), default=10, show_default=True, help="interleaved rounds")
@click.option("--no-cold-start", is_flag=True, help="skip the fresh-process cold start and peak memory probe")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="PNG plot (needs the bench extra)")
def bench_cmd(engines: str, model: str, batches: str, threads: int | None, rounds: int, no_cold_start: bool,
              json_path: str | None, output: str | None) -> None:
    """Latency and throughput of engines side by side, interleaved, with the roofline."""
    from gantool.benchmarks.bench import parse_batches, plot, run_bench, table

    names = [e.strip() for e in engines.split(",") if e.strip()]
    res = run_bench(model, names, parse_batches(batches), threads, rounds, cold=not no_cold_start)
    click.echo(table(res))
    if output:
        click.echo(plot(res, output))
    write_json(json_path, res.to_dict())


