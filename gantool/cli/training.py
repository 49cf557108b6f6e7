"""`gantool train`, `models`, `eval` and `judge train`: the commands that need PyTorch."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from gantool.cli.app import DEVICE, cli, need_torch, write_json
from gantool.spec import ZOO_NAMES


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


