"""Maintainers: turn a finished training run into a shipped generator with its model card.

    python scripts/ship_weights.py --name cdcgan --checkpoint runs/cdcgan/checkpoint.pt \
        --command "gantool train --model cdcgan ..." --data-dir ../shared/data/mnist

It stores the EMA generator in fp16, evaluates *that* fp16 model with `gantool eval`'s code on
10k samples, and writes the card (JSON in the weights header, Markdown beside it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from gantool.export.variants import (
    run_variants,  # scripts are the top layer: they may use all of gantool
)
from gantool.fileio import atomic_write_bytes
from gantool.paths import SHIPPED_ONNX, WEIGHTS_DIR
from gantool.train.checkpoint import load_checkpoint, spec_and_recipe
from gantool.train.data import load_split
from gantool.train.evaluate import evaluate_model
from gantool.train.precision import TrainPrecision
from gantool.train.quality import quality_bars
from gantool.train.shipped import (
    MNIST_ATTRIBUTION,
    read_shipped,
    shipped_path,
    write_shipped,
)
from gantool.train.zoo import ZOO


def training_images(ckpt: dict, data_dir: str | None) -> int:
    """How many images one epoch of the run read. Checkpoints record it; older ones (gantool 0.1) do not,
    and then the count comes from --data-dir, once its files prove to be the ones the run trained on."""
    data = ckpt.get("data") or {}
    if isinstance(data.get("images"), int):
        return data["images"]
    split = load_split(data_dir, "train")
    if dict(split.info.files) != data.get("files"):
        raise SystemExit("the checkpoint predates the recorded training-image count, and the --data-dir files are "
                         "not the ones it was trained on: pass --data-dir with its training data.")
    print(f"note: the checkpoint does not record its training-image count; counted {len(split.images)} in "
          f"--data-dir (same files as the run's)")
    return len(split.images)


def recorded_machine(ckpt: dict) -> str:
    m = ckpt.get("machine")
    if not isinstance(m, dict):
        return "2 CPU cores (x86_64), torch CPU build"  # what trained every checkpoint before it was recorded
    flags = ", ".join(m.get("cpu_flags", [])) or "no notable flags"
    return f"{m.get('cpus')} x {m.get('cpu_model')} ({flags}){', GPU ' + m['gpu'] if m.get('gpu') else ''}"


def _precision(card: dict) -> str:
    p = card.get("precision")
    if p is None:  # trained before gantool recorded it: every such run was fp32
        return "fp32 (trained before the precision was recorded)"
    return f"{p['name']}{' channels_last' if p['channels_last'] else ''} ({p['reason']})"


def card_markdown(name: str, card: dict) -> str:
    ev = card["eval"]
    missed = quality_bars(ev)
    fd = ev["fd_judge"]
    lines = [
        f"# {name}: model card", "", f"{ZOO[name].summary} ({ZOO[name].paper})", "",
        f"- Trained with: `{card['command']}`",
        f"- Seed {card['seed']}, {card['steps']} generator steps ({card['epochs']:.2f} epochs), "
        f"CPU time {card['cpu_hours']:.2f} core-hours on {card['machine']}",
        f"- Code: gantool {card['gantool_version']}, trained at commit {card['commit']}",
        f"- Recipe: {json.dumps(card['recipe'])}",
        f"- Training precision: {_precision(card)}"
        + (f", {card['world_size']} processes (torchrun)" if card.get("world_size", 1) > 1 else ""),
        f"- Quality tricks used: {card['tricks']}",
        "- Weights: EMA generator, stored in fp16 (the fp16 model is what was evaluated)",
        "- Quality bars: " + ("all met" if not missed else "**NOT met**: " + "; ".join(missed)),
        "- Data files (sha256): " + ", ".join(f"{k} {v[:16]}..." for k, v in card["data_files"].items()),
        "", f"## Evaluation (gantool eval, {ev['n']:,} samples, judge features)", "",
        "| measure | value |", "|---|---|",
        f"| FD-judge | {fd['value']:.2f} (95% CI {fd['ci95'][0]:.2f}-{fd['ci95'][1]:.2f}) |",
        f"| FD-judge real-data floor (10k train vs test) | {fd['real_floor_train10k_vs_test']:.2f} |",
        f"| reference | {ev.get('reference', 'the raw test split')} |",
        *([f"| against {ev['raw_reference']['reference']} (for continuity) | FD {ev['raw_reference']['fd_judge']:.2f} "
           f"(floor {ev['raw_reference']['real_floor_train10k_vs_test']:.2f}), precision / recall "
           f"{ev['raw_reference']['precision_recall'][0]:.3f} / {ev['raw_reference']['precision_recall'][1]:.3f} |"]
          if "raw_reference" in ev else []),
        f"| FD-judge of blurred test images / uniform noise | {fd['blurred_test_sigma2']:.0f} / {fd['uniform_noise']:.0f} |",
    ]
    for v in ev.get("judges", []):
        la, mc = v.get("label_accuracy"), v["mode_coverage"]
        if la is not None:
            worst = la["per_class"].index(min(la["per_class"]))
            lines.append(f"| label accuracy, {v['arch']} judge (overall / worst digit) | {la['overall']:.2%} / "
                         f"{la['per_class'][worst]:.2%} (digit {worst}); on the reference's real digits "
                         f"{v['reference_accuracy']:.2%} |")
        lines.append(f"| worst class share, {v['arch']} judge | {mc['worst_class_share']:.2%} (digit {mc['worst_class']}) |")
    for other, rate in ev.get("judge_disagreement", {}).items():
        lines.append(f"| judges' disagreement ({other} against the primary) | {rate:.2%} |")
    lines += [
        f"| precision / recall (k=3) | {ev['precision']:.3f} / {ev['recall']:.3f} |",
        f"| memorization share (unseen data: {ev['memorization']['expected_if_not_copying']:.0%}) | "
        f"{ev['memorization']['share']:.2%} |",
        f"| Parzen log-likelihood (sigma {ev['parzen']['sigma']}) | {ev['parzen']['mean']:.1f} +- {ev['parzen']['stderr']:.1f} |",
        "", "Parzen-window estimates are unreliable for comparing models (Theis et al. 2016); "
        "they are given only beside the 2014 papers' figures.", "", f"Data: {MNIST_ATTRIBUTION}", "",
    ]
    return "\n".join(lines)


def measure(name: str, path: Path, n: int, data_dir: str | None) -> dict:
    picture = Path("benchmarks/results/quality") / f"{name}.png"
    picture.parent.mkdir(parents=True, exist_ok=True)
    return evaluate_model(str(path), n=n, data_dir=data_dir, output=str(picture))


def re_evaluate(name: str, n: int, data_dir: str | None) -> None:
    """The same fp16 weights, measured again; the card keeps everything else it says."""
    path = shipped_path(name)
    spec, g, card = read_shipped(path)
    card["eval"] = measure(name, path, n, data_dir)
    write_shipped(path, spec, g.state_dict(), card)
    read_shipped(path)
    atomic_write_bytes(path.with_suffix(".md"), card_markdown(name, card).encode())
    print(card_markdown(name, card))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True, choices=list(ZOO))
    ap.add_argument("--checkpoint", type=Path, help="the finished run's checkpoint.pt (or best.pt)")
    ap.add_argument("--command", help="the exact training command, for the card")
    ap.add_argument("--re-eval", action="store_true",
                    help="keep the shipped weights and card, and measure them again (new judges or bars)")
    ap.add_argument("--tricks", default="EMA of G weights (decay 0.999), Adam beta1=0.5")
    ap.add_argument("--cpu-seconds", type=float, default=None, help="overrides the checkpoint's own count")
    ap.add_argument("--train-commit", default=None, help="the commit the run was trained at [default: HEAD]")
    ap.add_argument("--machine", default=None, help="[default: the CPU the checkpoint records]")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n", type=int, default=10000)
    args = ap.parse_args()
    if args.re_eval:
        re_evaluate(args.name, args.n, args.data_dir)
        return
    if args.checkpoint is None or args.command is None:
        raise SystemExit("--checkpoint and --command are required (or --re-eval)")
    ckpt = load_checkpoint(args.checkpoint)
    spec, recipe = spec_and_recipe(ckpt)
    if spec.arch != args.name:
        raise SystemExit(f"{args.checkpoint} holds a {spec.arch}, not a {args.name}")
    commit = args.train_commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                                 text=True).stdout.strip()
    steps = int(ckpt["step"])
    per_epoch = training_images(ckpt, args.data_dir) // (recipe.batch_size * recipe.n_critic)
    card = {"name": args.name, "command": args.command, "seed": int(ckpt["seed"]), "steps": steps,
            "epochs": steps / per_epoch, "recipe": recipe.to_dict(), "tricks": args.tricks,
            "cpu_hours": (args.cpu_seconds if args.cpu_seconds is not None else ckpt.get("cpu_seconds", 0.0)) / 3600,
            "machine": args.machine or recorded_machine(ckpt), "commit": commit,
            "precision": TrainPrecision.from_dict(ckpt.get("precision")).to_dict(),
            "world_size": int(ckpt.get("world_size", 1)), "gantool_version": ckpt["gantool_version"],
            "data_files": ckpt["data"]["files"], "attribution": MNIST_ATTRIBUTION}
    state = ckpt["generator_ema"] if ckpt.get("generator_ema") is not None else ckpt["generator"]
    path = shipped_path(args.name)
    write_shipped(path, spec, state, card)  # first the fp16 weights, so that eval measures them
    card["eval"] = measure(args.name, path, args.n, args.data_dir)
    write_shipped(path, spec, state, card)
    read_shipped(path)  # it loads back
    atomic_write_bytes(path.with_suffix(".md"), card_markdown(args.name, card).encode())
    if args.name in SHIPPED_ONNX:  # the ONNX family beside the weights (scripts/ship_onnx.py for one name)
        print(run_variants(str(path), str(WEIGHTS_DIR), stem=args.name).text())
    print(card_markdown(args.name, card))


if __name__ == "__main__":
    main()
