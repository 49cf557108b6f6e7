"""The `gantool` command: a thin click group. Each command parses options, builds the config and
calls one library function; heavy imports (torch) stay inside the commands that need them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

import gantool
from gantool.errors import GantoolError
from gantool.spec import ZOO_NAMES

DEVICE = click.Choice(["auto", "cpu", "cuda"])


def write_json(path: str | None, obj: Any) -> None:
    if path:
        from gantool.fileio import atomic_write_json

        atomic_write_json(path, obj)


def need_torch(command: str) -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise GantoolError(f"`gantool {command}` needs PyTorch, which is not installed.",
                           note='install the training extra: pip install "gantool[train]".') from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(gantool.__version__, prog_name="gantool")
def cli() -> None:
    """Train classic GANs on MNIST, export them, and sample fast."""


@cli.command()
@click.option("--model", required=True, metavar="NAME|CHECKPOINT",
              help=f"zoo name ({', '.join(ZOO_NAMES)}) or a checkpoint to start from")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), default=None,
              help="run folder [default: runs/NAME]")
@click.option("--data-dir", type=click.Path(), default=None, help="folder with MNIST-layout IDX files")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="[default: the model's recipe]")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="stop after this many G steps in all")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="stop (with a checkpoint) after this much wall-clock time; for equal-time comparisons")
@click.option("--batch-size", type=click.IntRange(min=2), default=None)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="sets both G's and D's rate")
@click.option("--lr-g", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option("--lr-d", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option("--loss", type=click.Choice(["bce", "lsgan", "hinge", "wgan-gp"]), default=None)
@click.option("--n-critic", type=click.IntRange(min=1), default=None)
@click.option("--label-smoothing", type=click.FloatRange(0, 0.5, max_open=True), default=None)
@click.option("--ema-decay", type=click.FloatRange(0, 1, max_open=True), default=None, help="0 disables EMA")
@click.option("--spectral-norm/--no-spectral-norm", default=None)
@click.option("--projection/--no-projection", default=None, help="projection discriminator (cgan, cwgan)")
@click.option("--fake-labels", type=click.Choice(["data", "uniform"]), default=None,
              help="labels of fakes in D's step: the real batch's, or random as in the seeds")
@click.option("--mode-seeking", type=click.FloatRange(min=0), default=None, metavar="WEIGHT",
              help="MSGAN's mode-seeking term on G's loss (1.0 is the paper's); against one image per label")
@click.option("--recipe", "base_recipe", type=click.Choice(["gantool", "seed"]), default="gantool", show_default=True,
              help="start from gantool's recipe or the seed notebook's (cgan, cdcgan), then apply the options above")
@click.option("--image-size", type=click.IntRange(min=4), default=None, help="output side, MLP models only")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=DEVICE, default="auto", show_default=True)
@click.option("--resume", is_flag=True, help="continue the run in -o exactly where its checkpoint stopped")
@click.option("--ckpt-every", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="write results here")
def train(model: str, out_dir: str | None, data_dir: str | None, json_path: str | None, **kw: Any) -> None:
    """Train a zoo GAN on MNIST (or any MNIST-layout IDX dataset)."""
    need_torch("train")
    from gantool.train.run import TrainRequest, run_training

    recipe_keys = ("epochs", "batch_size", "lr", "lr_g", "lr_d", "loss", "n_critic", "label_smoothing",
                   "ema_decay", "spectral_norm", "projection", "fake_labels", "mode_seeking")
    overrides = {k: kw.pop(k) for k in recipe_keys}
    name = Path(model).stem if Path(model).suffix else model
    req = TrainRequest(model=model, out_dir=Path(out_dir or f"runs/{name}"), data_dir=data_dir,
                       recipe_overrides=overrides, **kw)
    result = run_training(req)
    click.echo(f"trained {result.steps} steps ({result.epochs_done} epochs) -> {result.checkpoint}")
    if result.grid:
        click.echo(f"sample grid: {result.grid}")
    write_json(json_path, result.to_dict())


@cli.command()
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
def models(json_path: str | None) -> None:
    """List the zoo with parameters and FLOPs per sample."""
    need_torch("models")
    from gantool.train.zoo import MNIST_INFO, ZOO, build_models, build_spec, count_params, generator_flops

    rows = []
    for name, e in ZOO.items():
        spec = build_spec(name, MNIST_INFO)
        pair = build_models(spec)
        rows.append({"name": name, "conditional": e.conditional, "image": f"{spec.image_size}x{spec.image_size}",
                     "latent": spec.latent_dim, "loss": e.recipe.loss, "g_params": count_params(pair.generator),
                     "d_params": count_params(pair.discriminator), "g_mflops": round(generator_flops(spec) / 1e6, 2),
                     "summary": e.summary})
    click.echo(f"{'model':8} {'cond':5} {'image':6} {'z':>4} {'loss':8} {'G params':>10} {'D params':>10} "
               f"{'G MFLOP/img':>11}  summary")
    for r in rows:
        click.echo(f"{r['name']:8} {'yes' if r['conditional'] else 'no':5} {r['image']:6} {r['latent']:>4} "
                   f"{r['loss']:8} {r['g_params']:>10,} {r['d_params']:>10,} {r['g_mflops']:>11.2f}  {r['summary']}")
    write_json(json_path, rows)


@cli.command("eval")
@click.option("--model", required=True, metavar="NAME|CHECKPOINT", help="a training checkpoint (or a zoo name once weights ship)")
@click.option("--n", type=click.IntRange(min=100), default=10000, show_default=True, help="generated images")
@click.option("--data-dir", type=click.Path(), default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--judge", "judge_path", type=click.Path(dir_okay=False), default=None,
              help="judge weights [default: the shipped MNIST judge]")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="PNG grid [default: NAME-eval.png]")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
def eval_cmd(model: str, n: int, data_dir: str | None, seed: int, judge_path: str | None, output: str | None,
             json_path: str | None) -> None:
    """Measure a generator: FD-judge, label accuracy, mode coverage, precision/recall, memorization, Parzen."""
    need_torch("eval")
    from gantool.train.evaluate import evaluate_model

    report = evaluate_model(model, n=n, data_dir=data_dir, seed=seed, judge_path=judge_path, grid_path=output,
                            progress=sys.stdout.isatty())
    fd = report["fd_judge"]
    click.echo(f"{report['model']}: FD-judge {fd['value']:.2f} (95% CI {fd['ci95'][0]:.2f}-{fd['ci95'][1]:.2f}; "
               f"real floor {fd['real_floor_train10k_vs_test']:.2f}"
               + (f", resized to this size and back {fd['real_floor_resized']:.2f}" if "real_floor_resized" in fd else "")
               + f", blurred {fd['blurred_test_sigma2']:.0f}, noise {fd['uniform_noise']:.0f})")
    if "label_accuracy" in report:
        la = report["label_accuracy"]
        click.echo(f"label accuracy {la['overall']:.2%} (worst digit {min(la['per_class']):.2%})")
    mc = report["mode_coverage"]
    click.echo(f"worst class share {mc['worst_class_share']:.2%} (class {mc['worst_class']}); "
               f"precision {report['precision']:.3f} recall {report['recall']:.3f}; "
               f"memorized {report['memorization']['share']:.2%} (unseen data: "
               f"{report['memorization']['expected_if_not_copying']:.0%}); "
               f"Parzen {report['parzen']['mean']:.1f} +- {report['parzen']['stderr']:.1f}")
    click.echo(f"grid: {report['grid']}")
    write_json(json_path, report)


@cli.command("export")
@click.option("--model", required=True, metavar="NAME|CHECKPOINT", help="zoo name (shipped weights) or a checkpoint")
@click.option("--format", "fmt", type=click.Choice(["onnx", "triton"]), default="onnx", show_default=True,
              help="a single ONNX file, or a Triton model repository folder")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True)
@click.option("--opset", type=click.IntRange(17, 23), default=18, show_default=True)
@click.option("-o", "--output", type=click.Path(), default=None,
              help="[default: ./NAME.onnx, ./NAME.fp16.onnx, ./NAME.int8.onnx; triton: ./model_repository]")
@click.option("--max-batch", type=int, default=256, show_default=True, help="triton: max_batch_size")
@click.option("--plan", type=click.Path(dir_okay=False), default=None, help="triton: serve this built engine")
@click.option("--samples", type=click.IntRange(min=100), default=None,
              help="fp16/int8: samples for the judge-agreement check [default: 5000]")
@click.option("--lower/--no-lower", default=True, show_default=True,
              help="rewrite ConvTranspose into exact Gemm / phase-Conv equivalents, faster on ONNX Runtime's CPU")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="the validation report")
def export_cmd(model: str, fmt: str, precision: str, opset: int, output: str | None, max_batch: int,
               plan: str | None, samples: int | None, lower: bool, json_path: str | None) -> None:
    """Export a generator to ONNX (dynamic batch and labels), validate it against PyTorch."""
    need_torch("export")
    if fmt == "triton":
        from gantool.export.run import run_triton_export

        result, folder = run_triton_export(model, output or "model_repository", precision, opset, max_batch, plan,
                                           semantic_samples=samples, lower=lower)
        click.echo(result.text())
        click.echo(f"wrote Triton model {folder}")
        write_json(json_path, result.to_dict())
        return
    if plan is not None:
        raise GantoolError("--plan is a Triton option; allowed only with --format triton.")
    from gantool.export.run import run_export

    result = run_export(model, output, precision=precision, opset=opset, semantic_samples=samples, lower=lower)
    click.echo(result.text())
    click.echo(f"wrote {result.path}")
    write_json(json_path, result.to_dict())


@cli.command("build")
@click.option("--engine", type=click.Choice(["trt"]), default="trt", show_default=True)
@click.option("--model", required=True, metavar="NAME|ONNX", help="zoo name, checkpoint, or an exported .onnx")
@click.option("--precision", type=click.Choice(["fp16", "fp32"]), default="fp16", show_default=True)
@click.option("--min-batch", type=int, default=1, show_default=True)
@click.option("--opt-batch", type=int, default=64, show_default=True)
@click.option("--max-batch", type=int, default=256, show_default=True)
@click.option("--timing-cache", type=click.Path(dir_okay=False), default="gantool.timing-cache", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="[default: ./NAME.PRECISION.plan]")
@click.option("--verbose", is_flag=True, help="the TensorRT builder's log")
def build_cmd(engine: str, model: str, precision: str, min_batch: int, opt_batch: int, max_batch: int,
              timing_cache: str, output: str | None, verbose: bool) -> None:
    """Build a TensorRT engine (strongly typed, FP16 by default) and check it against ONNX Runtime."""
    from gantool.export.trt import Profile, import_tensorrt, run_build

    if max_batch < 1 or min_batch < 1:
        raise GantoolError(f"batch sizes must be >= 1; got min {min_batch}, max {max_batch}.")
    profile = Profile(min_batch, opt_batch, max_batch)
    import_tensorrt()  # exit 2 with an install hint before any export work
    plan, sidecar, report = run_build(model, output, precision, profile, timing_cache, verbose)
    click.echo(report.text())
    click.echo(f"wrote {plan} (+ {plan.name}.json) TensorRT {sidecar['tensorrt_version']} on {sidecar['gpu']}")


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


@cli.command("serve")
@click.option("--model", required=True, metavar="FILE|NAME", help="a .onnx/.plan file or a zoo name")
@click.option("--host", default="127.0.0.1", show_default=True, help="loopback by default; 0.0.0.0 exposes it")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--max-batch", type=click.IntRange(min=1), default=256, show_default=True,
              help="images per merged engine call")
@click.option("--max-wait-ms", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="how long a request may wait for others to join its batch")
@click.option("--max-n", type=click.IntRange(min=1), default=1024, show_default=True, help="images per request")
@click.option("--timeout-s", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True)
@click.option("--max-body-bytes", type=click.IntRange(min=64), default=65536, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="engine threads [default: all cores]")
def serve_cmd(model: str, host: str, port: int, max_batch: int, max_wait_ms: float, max_n: int, timeout_s: float,
              max_body_bytes: int, threads: int | None) -> None:
    """Serve sampling over HTTP with micro-batching (the serve extra)."""
    try:
        from gantool.serve.app import ServeConfig, serve
    except ImportError as e:
        raise GantoolError(f"`gantool serve` needs the serve extra ({e.name} is missing).",
                           note='pip install "gantool[serve]".') from None
    serve(model, host, port, ServeConfig(max_batch, max_wait_ms, max_n, timeout_s, max_body_bytes), threads)


@cli.group()
def judge() -> None:
    """The judge classifier whose features measure generated images."""


@judge.command("train")
@click.option("--data-dir", type=click.Path(), default=None, help="folder with MNIST-layout IDX files")
@click.option("--epochs", type=click.IntRange(min=1), default=6, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="judge.safetensors", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
def judge_train(data_dir: str | None, epochs: int, seed: int, output: str, json_path: str | None) -> None:
    """Train a judge on a dataset's train split and report its test accuracy."""
    need_torch("judge train")
    from gantool.train.data import load_split
    from gantool.train.judge import save_judge, train_judge

    model, metrics = train_judge(load_split(data_dir, "train"), load_split(data_dir, "test"), epochs=epochs,
                                 seed=seed, progress=sys.stdout.isatty())
    save_judge(output, model, metrics)
    worst = min(metrics["per_class_accuracy"])
    click.echo(f"judge test accuracy {metrics['test_accuracy']:.4%} (worst class {worst:.4%}) -> {output}")
    write_json(json_path, metrics)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    try:
        rv = cli.main(args=argv, prog_name="gantool", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:  # usage errors: bad option, missing argument, bad choice
        click.echo(f"gantool: error: {e.format_message()}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("gantool: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("gantool: interrupted", err=True)
        return 130
    except GantoolError as e:
        click.echo(f"gantool: error: {e}", err=True)
        return e.exit_code
    except OSError as e:  # disk full, permission denied: the user's environment, not a bug
        click.echo(f"gantool: error: {e.strerror or e}{f': {e.filename}' if e.filename else ''}", err=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
