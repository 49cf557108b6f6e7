"""`gantool train`, `models`, `eval` and `judge train`: the commands that need PyTorch.

The recipe options of `train` are made from the Recipe dataclass's fields (their metadata holds the
help text and allowed values), so the CLI and the recipe cannot drift apart. Every bound an option
declares comes from gantool.train.limits, the numbers the library itself enforces.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gantool.cli.app import DEVICE, SEED, cli, need_torch, write_json
from gantool.errors import GantoolError
from gantool.fileio import refuse_overwrite, same_file
from gantool.noise import MAX_SEED
from gantool.spec import ZOO_NAMES
from gantool.train.limits import (
    JUDGE_ARCHS,
    MAX_EVAL_SAMPLES,
    MAX_MLP_IMAGE_SIZE,
    MIN_EVAL_SAMPLES,
    README_EVAL_SAMPLES,
)
from gantool.train.precision import TRAIN_PRECISIONS
from gantool.train.recipe import Recipe

SEED_HELP = f"seed of every random choice (0..{MAX_SEED}); the same seed gives the same result"
DEVICE_HELP = "where torch computes: auto (cuda when a GPU is visible), cpu or cuda"


def _click_type(f: dataclasses.Field) -> Any:  # type: ignore[type-arg]
    """A recipe field's click type, from its metadata's choices or range."""
    if "choices" in f.metadata:
        return click.Choice(list(f.metadata["choices"]))
    kind = {"int": int, "float": float, "str": str}[str(f.type)]
    if "range" in f.metadata:
        low, high, low_open, high_open = f.metadata["range"]
        ranged = click.IntRange if kind is int else click.FloatRange
        return ranged(low, high, min_open=low_open, max_open=high_open)
    return kind


def recipe_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One option per CLI-visible Recipe field (--batch-size for batch_size, --spectral-norm/--no-spectral-norm
    for a bool), default None: only what the user gives overrides the model's recipe."""
    for f in reversed(dataclasses.fields(Recipe)):  # click lists options in decoration order, last applied first
        if not f.metadata.get("cli"):
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} [default: the model's recipe]"
        if str(f.type) == "bool":
            option = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, help=help_text)
        else:
            option = click.option(flag, f.name, type=_click_type(f), default=None, help=help_text)
        command = option(command)
    return command


def recipe_field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Recipe) if f.metadata.get("cli")]


def refuse_same_outputs(outputs: dict[str, str | None]) -> None:
    """Two outputs of one command naming one file: the second write would replace the first."""
    given = [(name, path) for name, path in outputs.items() if path is not None]
    for i, (a, pa) in enumerate(given):
        for b, pb in given[i + 1:]:
            if pa == pb or same_file(pa, pb):
                raise GantoolError(f"{a} and {b} name the same file ({pa}); one would overwrite the other.",
                                   note=f"choose another path for {b}.")


def _inputs(data_dir: str | None, **paths: str | os.PathLike[str] | None) -> dict[str, str | os.PathLike[str] | None]:
    """What a command reads (option -> path), dataset files included: no output may replace one."""
    from gantool.train.data import data_files

    return {**paths, **data_files(data_dir)}


@cli.command()
@click.option("--model", required=True, metavar="NAME|CHECKPOINT",
              help=f"zoo name ({', '.join(ZOO_NAMES)}) or a checkpoint to warm-start from (weights only)")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), default=None,
              help="run folder: checkpoint.pt, log.csv and samples/ [default: runs/NAME]")
@click.option("--data-dir", type=click.Path(), default=None, help="folder with MNIST-layout IDX files")
@recipe_options
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="sets both G's and D's Adam rate (--lr-g / --lr-d win where given)")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="stop after this many G steps in all (counted from the run's start, also on --resume)")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="stop (with a checkpoint) after this much wall-clock time; for equal-time comparisons")
@click.option("--recipe", "base_recipe", type=click.Choice(["gantool", "seed"]), default="gantool", show_default=True,
              help="start from gantool's recipe or the seed notebook's (cgan, cdcgan), then apply the options above")
@click.option("--image-size", type=click.IntRange(4, MAX_MLP_IMAGE_SIZE), default=None,
              help="output side, MLP models only [default: the data's]")
@click.option("--seed", type=SEED, default=None, help=f"{SEED_HELP} [default: 0; on --resume the run's own]")
@click.option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--precision", type=click.Choice(TRAIN_PRECISIONS), default="auto", show_default=True,
              help="training arithmetic: auto (bf16 autocast of the forward passes where the CPU or GPU has bf16 "
                   "units, else fp32), fp32 or bf16; weights, losses and optimizer state stay fp32 (fp16 and int8 "
                   "are export precisions) [on --resume: the run's own; auto is accepted, another is refused]")
@click.option("--resume", is_flag=True, help="continue the run in -o exactly where its checkpoint stopped")
@click.option("--ckpt-every", type=click.IntRange(min=1), default=500, show_default=True,
              help="write a checkpoint every this many steps (and at every epoch's end and the last step)")
@click.option("--eval-every", type=click.IntRange(min=1), default=None,
              help="every this many steps (and at the last), measure FD-judge and label accuracy of the EMA "
                   "generator on a small sample: eval.csv, the curve eval.png, and the lowest-FD checkpoint kept "
                   "as best.pt beside checkpoint.pt")
@click.option("--eval-samples", type=click.IntRange(MIN_EVAL_SAMPLES, MAX_EVAL_SAMPLES), default=None,
              help="images per --eval-every measurement [default: 2000; FD on fewer images reads higher than "
                   "gantool eval's 10,000]")
@click.option("--keep-evals", is_flag=True,
              help="keep every --eval-every step's checkpoint in evals/step-NNNNNNN.pt (with its measurement), "
                   "not only the lowest-FD one, to choose among after the run by gantool eval")
@click.option("--judge", type=click.Path(dir_okay=False), default=None,
              help="the judge of --eval-every [default: the shipped primary judge, which knows MNIST only]")
@click.option("--tensorboard", type=click.Path(file_okay=False), is_flag=False, flag_value="", default=None,
              metavar="[DIR]",
              help="also write log.csv's scalars (D/G loss, D(x), D(G(z)), images/s, learning rates) and every "
                   "sample grid as TensorBoard events in DIR [DIR default: RUN_DIR/tensorboard; on --resume the "
                   "steps after the checkpoint are replaced, not repeated]")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="write the results (steps, last losses, paths, images/s, precision, processes, where the time "
                   "went) here as JSON")
def train(model: str, out_dir: str | None, data_dir: str | None, json_path: str | None, lr: float | None,
          max_steps: int | None, max_minutes: float | None, resume: bool, ckpt_every: int, eval_every: int | None,
          tensorboard: str | None, **kw: Any) -> None:
    """Train a zoo GAN on MNIST (or any MNIST-layout IDX dataset)."""
    need_torch("train")
    from gantool.train.checkpoint import CHECKPOINT_NAME
    from gantool.train.loop import RunOptions
    from gantool.train.run import TrainRequest, run_training

    overrides = {"lr": lr, **{k: kw.pop(k) for k in recipe_field_names()}}
    name = Path(model).stem if Path(model).suffix else model
    run = Path(out_dir or f"runs/{name}")
    refuse_overwrite({"--json": json_path},
                     _inputs(data_dir, **{"--model": model if Path(model).is_file() else None,
                                          "the run's checkpoint": run / CHECKPOINT_NAME,
                                          "the run's log": run / "log.csv", "--judge": kw.get("judge")}))
    from gantool.train.tensorboard_log import DEFAULT_DIR

    board = None if tensorboard is None else run / DEFAULT_DIR if tensorboard == "" else Path(tensorboard)
    opts = RunOptions(out_dir=run, max_steps=max_steps, max_minutes=max_minutes, ckpt_every=ckpt_every, resume=resume,
                      eval_every=eval_every, tensorboard=board)
    req = TrainRequest(model=model, run=opts, data_dir=data_dir, recipe_overrides=overrides, **kw)
    result = run_training(req)
    if not result.main:  # another rank of a torchrun job: rank 0 reports
        return
    click.echo(f"trained {result.steps} steps ({result.epochs_done} epochs) -> {result.checkpoint}")
    if result.grid:
        click.echo(f"sample grid: {result.grid}")
    if board is not None:
        click.echo(f"tensorboard events: {board} (view: tensorboard --logdir {board})")
    write_json(json_path, result.to_dict())


TORCH_COLUMNS = ("loss", "D params", "G MFLOP/img", "summary")


@cli.command()
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="write the table here as JSON (one object per model)")
def models(json_path: str | None) -> None:
    """List the zoo with parameters and FLOPs per sample (without PyTorch: what the shipped weights tell)."""
    try:
        need_torch("models")
    except GantoolError:
        rows = _models_without_torch()
        click.echo(f"gantool: note: PyTorch is not installed; the {', '.join(TORCH_COLUMNS)} columns need the train "
                   f'extra (pip install "gantool[train]"), the others come from the shipped weights.', err=True)
    else:
        rows = _models_with_torch()
    dash = "-"
    click.echo(f"{'model':8} {'cond':5} {'image':6} {'z':>4} {'loss':8} {'G params':>10} {'D params':>10} "
               f"{'G MFLOP/img':>11}  summary")
    for r in rows:
        cond = dash if r["conditional"] is None else "yes" if r["conditional"] else "no"
        click.echo(f"{r['name']:8} {cond:5} {r['image'] or dash:6} {r['latent'] or dash:>4} {r['loss'] or dash:8} "
                   f"{_num(r['g_params']):>10} {_num(r['d_params']):>10} "
                   f"{dash if r['g_mflops'] is None else format(r['g_mflops'], '.2f'):>11}  {r['summary'] or dash}"
                   + (f" ({r['paper']})" if r.get("paper") else ""))
    write_json(json_path, rows)


def _num(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _models_with_torch() -> list[dict[str, Any]]:
    from gantool.train.zoo import (
        MNIST_INFO,
        ZOO,
        build_models,
        build_spec,
        count_params,
        generator_flops,
    )

    rows = []
    for name, e in ZOO.items():
        spec = build_spec(name, MNIST_INFO)
        pair = build_models(spec)
        rows.append({"name": name, "conditional": e.conditional, "image": f"{spec.image_size}x{spec.image_size}",
                     "latent": spec.latent_dim, "loss": e.recipe.loss, "g_params": count_params(pair.generator),
                     "d_params": count_params(pair.discriminator), "g_mflops": round(generator_flops(spec) / 1e6, 2),
                     "summary": e.summary, "paper": e.paper})
    return rows


def _models_without_torch() -> list[dict[str, Any]]:
    """The zoo's names, and for each shipped generator what its safetensors header says (spec, G params)."""
    from gantool.paths import WEIGHTS_DIR
    from gantool.train.header import header_spec, parameter_count, read_header

    rows = []
    for name in ZOO_NAMES:
        row: dict[str, Any] = {"name": name, "conditional": None, "image": None, "latent": None, "loss": None,
                               "g_params": None, "d_params": None, "g_mflops": None, "summary": None}
        path = WEIGHTS_DIR / f"{name}.safetensors"
        if path.is_file():
            meta, tensors = read_header(path)
            spec = header_spec(meta, path)
            row.update(conditional=spec.conditional, image=f"{spec.image_size}x{spec.image_size}",
                       latent=spec.latent_dim, g_params=parameter_count(tensors))
        rows.append(row)
    return rows


@cli.command("eval")
@click.option("--model", required=True, metavar="NAME|FILE",
              help=f"zoo name ({', '.join(ZOO_NAMES)}: its shipped weights), a training checkpoint (.pt) or a "
                   f"shipped generator (.safetensors)")
@click.option("--n", type=click.IntRange(MIN_EVAL_SAMPLES, MAX_EVAL_SAMPLES), default=README_EVAL_SAMPLES,
              show_default=True,
              help=f"generated images to measure ({MIN_EVAL_SAMPLES}..{MAX_EVAL_SAMPLES})")
@click.option("--data-dir", type=click.Path(), default=None,
              help="folder with the MNIST-layout IDX files the judge compares against (train and test split)")
@click.option("--seed", type=SEED, default=0, show_default=True, help=SEED_HELP)
@click.option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--judge", "judge_paths", type=click.Path(dir_okay=False), multiple=True,
              help="judge weights, at most twice: the first is the primary (FD and precision/recall use its "
                   "features), the second adds its label accuracy and class shares; named judges are trusted with "
                   "any data, and the bars (set for the shipped judges) are not checked [default: the two shipped "
                   "MNIST judges, cnn and resnet, which refuse data they were not trained on]")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="PNG report: the sample grid beside per-digit label accuracy and the class histogram under "
                   "each judge [default: NAME-eval.png]")
@click.option("--truncation", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="measure samples drawn with truncated noise (as gantool sample --truncation); the bars apply "
                   "at 1 only")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="write the full report here as JSON")
def eval_cmd(model: str, n: int, data_dir: str | None, seed: int, device: str, judge_paths: tuple[str, ...],
             output: str | None, truncation: float, json_path: str | None) -> None:
    """Measure a generator: FD-judge, label accuracy, mode coverage, precision/recall, memorization, Parzen."""
    need_torch("eval")
    from gantool.train.evaluate import evaluate_model

    refuse_overwrite({"-o": output, "--json": json_path},
                     _inputs(data_dir, **{"--model": model}, **{f"--judge {p}": p for p in judge_paths}))
    refuse_same_outputs({"-o": output, "--json": json_path})
    report = evaluate_model(model, n=n, data_dir=data_dir, seed=seed, judge_paths=judge_paths, output=output,
                            progress=sys.stdout.isatty(), device=device, truncation=truncation)
    _print_eval(report)
    write_json(json_path, report)


def _print_eval(report: dict[str, Any]) -> None:
    fd, views = report["fd_judge"], report["judges"]
    names = ", ".join(f"{v['name']} ({v['arch']})" for v in views)
    truncated = f", truncation {report['truncation']:g}" if report.get("truncation", 1) != 1 else ""
    click.echo(f"{report['model']}: n {report['n']:,}, seed {report['seed']}{truncated}, "
               f"judge{'s' if len(views) > 1 else ''} {names}{'; FD in the first one' if len(views) > 1 else ''}")
    if report["n"] < README_EVAL_SAMPLES:
        click.echo(f"gantool: note: n {report['n']:,} < {README_EVAL_SAMPLES:,}: the figures will differ from the "
                   f"README's table, which uses {README_EVAL_SAMPLES:,} samples.", err=True)
    click.echo(f"{report['model']}: FD-judge {fd['value']:.2f} (95% CI {fd['ci95'][0]:.2f}-{fd['ci95'][1]:.2f}; "
               f"real floor {fd['real_floor_train10k_vs_test']:.2f}, blurred {fd['blurred_test_sigma2']:.0f}, noise "
               f"{fd['uniform_noise']:.0f}) against {report['reference']}")
    raw = report.get("raw_reference")
    if raw is not None:
        click.echo(f"against {raw['reference']} (for continuity): FD-judge {raw['fd_judge']:.2f} (floor "
                   f"{raw['real_floor_train10k_vs_test']:.2f}), precision {raw['precision_recall'][0]:.3f} recall "
                   f"{raw['precision_recall'][1]:.3f}, memorized {raw['memorization']:.2%}")
    for v in views:
        la, mc = v.get("label_accuracy"), v["mode_coverage"]
        if la is not None:
            worst = min(range(len(la["per_class"])), key=la["per_class"].__getitem__)
            click.echo(f"{v['arch']} judge: label accuracy {la['overall']:.2%} (worst digit {worst}: "
                       f"{la['per_class'][worst]:.2%}); on the reference's real digits {v['reference_accuracy']:.2%}")
            click.echo("  per digit: " + " ".join(f"{d}:{a:.1%}" for d, a in enumerate(la["per_class"])))
        else:
            click.echo(f"{v['arch']} judge: worst class share {mc['worst_class_share']:.2%} (class "
                       f"{mc['worst_class']})")
        click.echo("  class shares: " + " ".join(f"{d}:{s:.1%}" for d, s in enumerate(mc["class_share"])))
    for name, rate in report.get("judge_disagreement", {}).items():
        click.echo(f"judges disagree on {rate:.2%} of the samples ({views[0]['name']} against {name})")
    mc = report["mode_coverage"]
    click.echo(f"worst class share {mc['worst_class_share']:.2%} (class {mc['worst_class']}, {views[0]['arch']} judge); "
               f"precision {report['precision']:.3f} recall {report['recall']:.3f}; "
               f"memorized {report['memorization']['share']:.2%} (unseen data: "
               f"{report['memorization']['expected_if_not_copying']:.0%}); "
               f"Parzen {report['parzen']['mean']:.1f} +- {report['parzen']['stderr']:.1f}")
    bars = report["bars"]
    if bars is None:
        click.echo("bars: not checked: they are set in the shipped judges' units, and --judge named others")
    else:
        click.echo("bars: " + ("all met" if not bars["missed"] else "missed: " + "; ".join(bars["missed"])))
    click.echo(f"report: {report['output']}")


@cli.group()
def judge() -> None:
    """The judges: classifiers whose verdicts and features measure generated images."""


@judge.command("train")
@click.option("--data-dir", type=click.Path(), default=None, help="folder with MNIST-layout IDX files")
@click.option("--arch", type=click.Choice(JUDGE_ARCHS), default="cnn", show_default=True,
              help="cnn (the primary judge: conv + max-pool) or resnet (the second: residual blocks, global "
                   "average pooling), so that two judges err on different images")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="passes over the training split [default: 6 for cnn, 8 for resnet]")
@click.option("--seed", type=SEED, default=0, show_default=True, help=SEED_HELP)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="judge.safetensors", show_default=True,
              help="where to write the judge's weights (safetensors, config in the header)")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="write its metrics (test accuracy overall and per class, and on round-tripped and blurred digits) here as JSON")
def judge_train(data_dir: str | None, arch: str, epochs: int | None, seed: int, output: str, json_path: str | None) -> None:
    """Train a judge on a dataset's train split and report its test accuracy."""
    need_torch("judge train")
    from gantool.train.data import load_split
    from gantool.train.judge import save_judge, train_judge

    refuse_overwrite({"-o": output, "--json": json_path}, _inputs(data_dir))
    refuse_same_outputs({"-o": output, "--json": json_path})
    model, metrics = train_judge(load_split(data_dir, "train"), load_split(data_dir, "test"), epochs=epochs,
                                 seed=seed, progress=sys.stdout.isatty(), arch=arch)
    save_judge(output, model, metrics)
    worst = min(metrics["per_class_accuracy"])
    click.echo(f"judge ({arch}) test accuracy {metrics['test_accuracy']:.4%} (worst class {worst:.4%}) -> {output}")
    click.echo("accuracy on " + ", ".join(f"{k.replace('_', ' ')} {v:.2%}" for k, v in metrics["robustness"].items()))
    write_json(json_path, metrics)


@judge.command("list")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="write the table here as JSON (one object per judge)")
def judge_list(json_path: str | None) -> None:
    """The shipped judges and their accuracy on real, round-tripped (28->64->28) and blurred test digits."""
    need_torch("judge list")
    from gantool.train.judge import load_judges

    rows = []
    click.echo(f"{'judge':30} {'arch':6} {'role':7} {'params':>8} {'test':>7} {'worst':>7} {'trip 64':>7} "
               f"{'blurred':>7} {'epochs':>6}  data")
    for i, j in enumerate(load_judges()):
        m, rob = j.metrics, j.metrics.get("robustness", {})
        test, worst = _round(m.get("test_accuracy")), _round(min(m.get("per_class_accuracy") or [0.0]))
        row = {"name": j.name, "arch": j.judge.cfg.arch, "primary": i == 0,
               "params": sum(p.numel() for p in j.judge.parameters()), "test_accuracy": test, "worst_class": worst,
               "robustness": {k: _round(v) for k, v in rob.items()}, "epochs": m.get("epochs"),
               "train_seconds": m.get("train_seconds"), "dataset": j.judge.cfg.dataset,
               "data_digest": j.judge.cfg.data_digest, "test_digest": j.judge.cfg.test_digest}
        rows.append(row)
        trip, blurred = (next((v for k, v in rob.items() if k.startswith(p)), None) for p in ("round_trip", "blurred"))
        click.echo(f"{j.name:30} {row['arch']:6} {'primary' if i == 0 else 'second':7} {row['params']:>8,} "
                   f"{_pct(test)} {_pct(worst)} {_pct(trip)} {_pct(blurred)} "
                   f"{row['epochs'] or '-':>6}  {j.judge.cfg.dataset} {j.judge.cfg.data_digest[:12] or '(no digest)'}")
    click.echo("trip 64: test digits after the 64x64 models' resize and back (their label accuracy's ceiling); "
               "blurred: Gaussian sigma 2 (a lenient judge still reads them)")
    write_json(json_path, rows)


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 6)


def _pct(v: float | None) -> str:
    return f"{'-':>7}" if v is None else f"{v:7.2%}"
