"""Sample quality, measured offline in the judge's feature space (see train/judge.py).

Every number is placed beside references in the same units: FD of real data against itself
(the floor) and of blurred/noise images (bad references). The Parzen-window log-likelihood is
reported for comparison with the 2014 papers only: it is known to rank models poorly
(Theis et al. 2016), so no decision should rest on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gantool.contract import cycle_labels
from gantool.errors import DataError, GantoolError
from gantool.noise import check_truncation, make_noise
from gantool.spec import ModelSpec
from gantool.train.data import Split
from gantool.train.judge import BLUR_SIGMA, Judge, blur, class_counts, through_resize
from gantool.train.limits import README_EVAL_SAMPLES, check_eval_size, check_seed

Progress = Callable[[str], None]

def _device(module: torch.nn.Module) -> torch.device:
    return next((p.device for p in module.parameters()), torch.device("cpu"))


@torch.no_grad()
def generate(g: torch.nn.Module, spec: ModelSpec, n: int, seed: int, batch: int = 500,
             truncation: float = 1.0) -> tuple[torch.Tensor, np.ndarray | None]:
    """n images in [-1, 1] (on the CPU) from the project's noise; conditional models get the contract's
    cycled labels 0..K-1, so eval, the runtime and bench draw the same (z, label) pairs."""
    device = _device(g)
    z = torch.from_numpy(make_noise(seed, n, spec.latent_dim, spec.noise, truncation))
    labels = cycle_labels(n, spec.num_classes) if spec.conditional else None
    out = []
    for i in range(0, n, batch):
        y = torch.from_numpy(labels[i:i + batch]).to(device) if labels is not None else None
        out.append(g(z[i:i + batch].to(device), y).float().clamp(-1, 1).cpu())
    return torch.cat(out), labels


@torch.no_grad()
def judge_outputs(judge: Judge, x: torch.Tensor, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features (float64) and predicted classes of images in [-1, 1], on the judge's device."""
    device = _device(judge)
    feats, preds = [], []
    for i in range(0, len(x), batch):
        f = judge.features(x[i:i + batch].to(device))
        feats.append(f.double().cpu().numpy())
        preds.append(judge.head(f).argmax(1).cpu().numpy())
    return np.concatenate(feats), np.concatenate(preds)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(Sa + Sb - 2 (Sa Sb)^1/2), via the symmetric form sqrt(Sa) Sb sqrt(Sa)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ sb @ root_a)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.sqrt(np.clip(cross, 0, None)).sum())


def bootstrap_fd(fake: np.ndarray, real: np.ndarray, rounds: int, seed: int) -> tuple[float, float]:
    """A normal-approximation 95% interval, FD +- 1.96 sd over resamples of the generated set.

    Resampling with replacement repeats samples, which shrinks the set's spread and biases each
    resampled FD upwards, so percentiles of the resamples would not even contain the estimate;
    their spread is still a fair measure of the estimate's sampling noise.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    values = [frechet_distance(fake[rng.integers(0, len(fake), len(fake))], real) for _ in range(rounds)]
    fd, sd = frechet_distance(fake, real), float(np.std(values, ddof=1))
    return max(0.0, fd - 1.96 * sd), fd + 1.96 * sd  # a distance: never below zero


def _knn_radius(x: torch.Tensor, k: int, chunk: int = 2000) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row."""
    out = [torch.cdist(x[i:i + chunk], x).kthvalue(k + 1, dim=1).values for i in range(0, len(x), chunk)]
    return torch.cat(out)


def _inside(query: torch.Tensor, ref: torch.Tensor, radius: torch.Tensor, chunk: int = 2000) -> torch.Tensor:
    """For each query row: is it inside any ref row's k-NN ball?"""
    return torch.cat([(torch.cdist(query[i:i + chunk], ref) <= radius[None, :]).any(1)
                      for i in range(0, len(query), chunk)])


def precision_recall(fake: np.ndarray, real: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019: precision = fakes on the real manifold, recall = reals on the fake one."""
    f, r = torch.from_numpy(fake).float(), torch.from_numpy(real).float()
    precision = float(_inside(f, r, _knn_radius(r, k)).float().mean())
    recall = float(_inside(r, f, _knn_radius(f, k)).float().mean())
    return precision, recall


def nearest_distance(query: torch.Tensor, ref: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    return torch.cat([torch.cdist(query[i:i + chunk], ref).min(1).values for i in range(0, len(query), chunk)])


def memorization(fake_px: torch.Tensor, train_px: torch.Tensor, test_px: torch.Tensor, quantile: float = 0.05) -> dict[str, float]:
    """Share of generated images closer (in pixels) to a training image than all but `quantile` of test images are.

    Test images are unseen, so about `quantile` of a non-copying generator's samples fall under the
    threshold; a generator that copies its data scores near 1.
    """
    threshold = float(torch.quantile(nearest_distance(test_px, train_px), quantile))
    share = float((nearest_distance(fake_px, train_px) < threshold).float().mean())
    return {"share": share, "expected_if_not_copying": quantile, "threshold_l2": threshold}


def parzen_log_likelihood(fake01: torch.Tensor, valid01: torch.Tensor, test01: torch.Tensor,
                          sigmas: tuple[float, ...] = (0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3)) -> dict[str, float]:
    """Gaussian Parzen window on generated samples (pixels in [0, 1]), sigma chosen on a validation split."""
    def mean_ll(x: torch.Tensor, sigma: float) -> torch.Tensor:
        d = fake01.shape[1]
        lls = []
        for i in range(0, len(x), 500):
            sq = torch.cdist(x[i:i + 500].double(), fake01.double()) ** 2
            lls.append(torch.logsumexp(-sq / (2 * sigma ** 2), 1) - math.log(len(fake01))
                       - d * math.log(sigma * math.sqrt(2 * math.pi)))
        return torch.cat(lls)

    best = max(sigmas, key=lambda s: float(mean_ll(valid01, s).mean()))
    ll = mean_ll(test01, best)
    return {"mean": float(ll.mean()), "stderr": float(ll.std() / math.sqrt(len(ll))), "sigma": best}


@dataclass
class EvalData:
    """Judge features of the real data, computed once and shared by every metric."""

    test_feats: np.ndarray
    train_feats: np.ndarray  # 10k training images: the real-data floor
    test_px: torch.Tensor  # (N, H*W) in [0, 1] at the judge's size
    train_px: torch.Tensor
    test_labels: np.ndarray
    size: int  # the side the real images were taken through before the judge saw them
    reference: str  # what they are, in the report's words


def prepare_real(judge: Judge, train: Split, test: Split, n_floor: int = 10000, size: int | None = None) -> EvalData:
    """The real data as the judge sees it. size: a model's training side. Where it is not the judge's,
    the real images take the model's own path: the training data's resize (train.data.prepare_images,
    the function training uses), then the judge's area average, as the model's samples do. The
    real-data floor is then the floor again (raw 28x28 test digits after a 64x64 round trip: FD 183)."""
    side = size or judge.cfg.image_size
    test_x, train_x = through_resize(test.images, side, judge), through_resize(train.images, side, judge)
    test_feats, _ = judge_outputs(judge, test_x)
    train_feats, _ = judge_outputs(judge, train_x[:n_floor])
    reference = "the raw test split" if side == judge.cfg.image_size else \
        f"the test split through the {side}x{side} training resize"
    return EvalData(test_feats=test_feats, train_feats=train_feats, test_px=test_x.flatten(1).add(1).div(2),
                    train_px=train_x.flatten(1).add(1).div(2), test_labels=test.labels, size=side,
                    reference=reference)


def evaluate(g: torch.nn.Module, spec: ModelSpec, judge: Judge, real: EvalData, n: int = README_EVAL_SAMPLES,
             seed: int = 0, bootstrap: int = 20, progress: Progress = lambda s: None,
             raw: EvalData | None = None, others: Sequence[tuple[str, Judge]] = (),
             judge_name: str = "primary", truncation: float = 1.0) -> dict[str, Any]:
    """Every quality number of one generator, as one JSON-ready dict. `real` is the reference the
    model is judged against (the fair one: prepare_real(..., size=spec.image_size)); `raw`, where
    given, the raw test split, whose figures are kept beside them under "raw_reference".

    others: (name, judge) pairs beside the primary `judge`. Each gives its own label accuracy, mode
    coverage and accuracy on the reference's real digits (the ceiling of label accuracy) under
    "judges", and its disagreement with the primary; FD and precision/recall stay in the primary's
    features, so that they compare with every earlier figure."""
    g.eval()
    progress("generating")
    x, labels = generate(g, spec, n, seed, truncation=truncation)
    if not bool(torch.isfinite(x).all()):
        raise GantoolError(f"the {spec.arch} generator produced NaN images; its outputs cannot be measured.",
                           note="its weights are finite but overflow; use an earlier checkpoint.")
    progress("judging")
    feats, preds = judge_outputs(judge, x)
    report: dict[str, Any] = {"model": spec.arch, "n": n, "seed": seed, "truncation": truncation,
                              "judge_dataset": judge.cfg.dataset,
                              "reference": real.reference}
    progress("frechet distance")
    fd = frechet_distance(feats, real.test_feats)
    lo, hi = bootstrap_fd(feats, real.test_feats, bootstrap, seed)
    test_x = (real.test_px * 2 - 1).view(-1, 1, judge.cfg.image_size, judge.cfg.image_size)
    noise = torch.from_numpy(np.random.Generator(np.random.PCG64(seed)).uniform(-1, 1, test_x.shape).astype(np.float32))
    report["fd_judge"] = {
        "value": fd, "ci95": [lo, hi],
        "real_floor_train10k_vs_test": frechet_distance(real.train_feats, real.test_feats),
        "blurred_test_sigma2": frechet_distance(judge_outputs(judge, blur(test_x, BLUR_SIGMA))[0], real.test_feats),
        "uniform_noise": frechet_distance(judge_outputs(judge, noise)[0], real.test_feats),
    }
    verdicts = [(name, j, judge_outputs(j, x)[1]) for name, j in others]
    views = [_verdict(name, j, p, labels, test_x, real.test_labels) for name, j, p in [(judge_name, judge, preds),
                                                                                        *verdicts]]
    report["mode_coverage"] = views[0]["mode_coverage"]
    if labels is not None:
        report["label_accuracy"] = views[0]["label_accuracy"]
    report["judges"] = views
    if others:  # share of samples that a second judge puts in another class than the primary does
        report["judge_disagreement"] = {name: float((p != preds).mean()) for name, _, p in verdicts}
    progress("precision/recall")
    m = min(n, len(real.test_feats))
    report["precision"], report["recall"] = precision_recall(feats[:m], real.test_feats[:m])
    progress("memorization")
    fake_px = judge.prepare(x).flatten(1).add(1).div(2)
    report["memorization"] = memorization(fake_px, real.train_px, real.test_px)
    if raw is not None:  # for continuity with figures from before the fair reference
        report["raw_reference"] = {
            "reference": raw.reference, "fd_judge": frechet_distance(feats, raw.test_feats),
            "real_floor_train10k_vs_test": frechet_distance(raw.train_feats, raw.test_feats),
            "precision_recall": list(precision_recall(feats[:m], raw.test_feats[:m])),
            "memorization": memorization(fake_px, raw.train_px, raw.test_px)["share"]}
    progress("parzen")
    report["parzen"] = parzen_log_likelihood(fake_px, real.train_px[-1000:], real.test_px)
    return report


def _verdict(name: str, judge: Judge, preds: np.ndarray, labels: np.ndarray | None, real_x: torch.Tensor,
             real_labels: np.ndarray) -> dict[str, Any]:
    """What one judge says of the samples: its class histogram, label accuracy (conditional models)
    and its accuracy on the reference's real digits, which bounds the label accuracy it can report."""
    return {"name": name, "arch": judge.cfg.arch, **class_counts(preds, labels, judge.cfg.num_classes),
            "reference_accuracy": float((judge_outputs(judge, real_x)[1] == real_labels).mean())}


def evaluate_model(model: str, n: int = README_EVAL_SAMPLES, data_dir: str | None = None, seed: int = 0,
                   judge_paths: Sequence[str] = (), output: str | None = None, progress: bool = False,
                   device: str = "cpu", truncation: float = 1.0) -> dict[str, Any]:
    """`gantool eval`: load a generator and the judges, measure, write the report picture; returns the report.

    judge_paths: the judges, primary first [default: the shipped ones, which refuse data they were not
    trained on]. device: auto, cpu or cuda (gantool.train.loop.resolve_device); generation and the
    judges run there, the metrics on the CPU.
    """
    from gantool.train.checkpoint import load_generator
    from gantool.train.data import load_split, shown_dir
    from gantool.train.judge import check_judge_data, load_judges
    from gantool.train.loop import resolve_device, sample_grid
    from gantool.train.quality import quality_bars
    from gantool.train.report import save_report

    check_eval_size(n)
    check_seed(seed)
    try:
        truncation = check_truncation(truncation)
    except ValueError as e:
        raise GantoolError(f"--truncation: {e}.") from None
    device = resolve_device(device)
    spec, g = load_generator(model)
    judges = load_judges(judge_paths)
    train_split, test_split = load_split(data_dir, "train"), load_split(data_dir, "test")
    for j in judges:
        check_fits(j.judge, spec, (train_split, test_split))
        if j.shipped:
            check_judge_data(j.judge, (train_split, test_split), "gantool eval", shown_dir(data_dir))
    g = g.to(device)
    for j in judges:
        j.judge = j.judge.to(device)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=8, desc="eval", bar_format="{desc}: {n}/{total} {postfix}")
    def tick(stage: str) -> None:
        if bar is not None:
            bar.set_postfix_str(stage)
            bar.update(1)

    tick("real data")
    primary = judges[0]
    real = prepare_real(primary.judge, train_split, test_split, size=spec.image_size)
    raw = prepare_real(primary.judge, train_split, test_split) if real.size != primary.judge.cfg.image_size else None
    report = evaluate(g, spec, primary.judge, real, n=n, seed=seed, progress=tick, raw=raw,
                      others=[(j.name, j.judge) for j in judges[1:]], judge_name=primary.name, truncation=truncation)
    output = output or f"{spec.arch}-eval.png"
    save_report(output, report, sample_grid(g, spec, seed, device=device, truncation=truncation))
    if bar is not None:
        bar.close()
    report["output"] = str(output)
    report["checkpoint"] = str(model)
    report["judge"] = primary.name + (" (shipped)" if primary.shipped else "")
    # the bars are set in the shipped judges' units (FD in the primary's features): other judges, no verdict
    # and for the model's own noise: truncation trades recall away on purpose
    report["bars"] = {"missed": quality_bars(report)} if primary.shipped and truncation == 1 else None
    return report


def check_fits(judge: Judge, spec: ModelSpec, splits: tuple[Split, ...]) -> None:
    """The judge can measure this model on this data: the same classes, images of its size."""
    if judge.cfg.num_classes != spec.num_classes:
        raise GantoolError(f"the judge knows {judge.cfg.num_classes} classes but the model has {spec.num_classes}.",
                           note="train a judge on the model's dataset: gantool judge train --data-dir DIR.")
    for split in splits:
        if split.info.image_size != judge.cfg.image_size:
            name = next(iter(split.info.files), "the data")
            raise DataError(f"{name} holds {split.info.image_size}x{split.info.image_size} images, but the judge "
                            f"compares {judge.cfg.image_size}x{judge.cfg.image_size} ones; allowed: data of the "
                            f"judge's size.", note="pass --judge with a judge trained on this data (gantool judge "
                                                   "train --data-dir DIR).")
