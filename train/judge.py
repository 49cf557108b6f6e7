"""The judge: a small MNIST CNN that gantool trains itself, used to measure generated images.

Its penultimate-layer features are the feature space for FD/precision/recall (Inception weights
cannot be downloaded offline). It is never a training signal for a GAN. Weights are stored as
safetensors with the config in the header, so loading needs nothing else and runs no code.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gantool.errors import CheckpointError, DataError, GantoolError
from gantool.fileio import atomic_write_bytes
from gantool.train.data import Split
from gantool.train.limits import JUDGE_ARCHS, JUDGE_EPOCHS, check_seed

log = logging.getLogger(__name__)

JUDGE_SCHEMA_VERSION = 1
_WEIGHTS = resources.files("gantool") / "weights"
# The shipped MNIST judges, primary first: FD and precision/recall are in the primary's features;
# the second, of another architecture, checks its label accuracy and mode coverage.
SHIPPED_JUDGES = {"cnn": Path(str(_WEIGHTS / "judge-mnist.safetensors")),
                  "resnet": Path(str(_WEIGHTS / "judge-mnist-resnet.safetensors"))}
SHIPPED_JUDGE = SHIPPED_JUDGES["cnn"]
MAX_JUDGES = 2


@dataclass(frozen=True)
class JudgeConfig:
    num_classes: int = 10
    image_size: int = 28  # images of other sizes are area-averaged to this before judging
    width: int = 32
    feature_dim: int = 128
    dataset: str = "mnist"
    schema_version: int = JUDGE_SCHEMA_VERSION
    arch: str = "cnn"  # one of JUDGE_ARCHS
    data_digest: str = ""  # Split.digest() of the training split it learned ("": not recorded)
    test_digest: str = ""  # and of the test split it was measured on, which eval's reference is


def _cnn_body(cfg: JudgeConfig) -> nn.Sequential:
    """The primary judge: plain conv + max-pool, a wide flattened layer into the features."""
    w, s = cfg.width, cfg.image_size // 4
    return nn.Sequential(
        nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),  # (B, 1, 28, 28) -> (B, 32, 28, 28)
        nn.MaxPool2d(2),  # -> (B, 32, 14, 14)
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),  # -> (B, 64, 14, 14)
        nn.MaxPool2d(2),  # -> (B, 64, 7, 7)
        nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(),  # -> (B, 128, 7, 7)
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(4 * w * s * s, cfg.feature_dim), nn.ReLU(),  # -> (B, 128): the feature space
    )


class _Residual(nn.Module):
    """He et al.'s basic block: two 3x3 convs beside a shortcut (a strided 1x1 conv where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.main(x) + self.shortcut(x))


def _resnet_body(cfg: JudgeConfig) -> nn.Sequential:
    """The second judge: residual, strided (no pooling until a global average), so it errs elsewhere."""
    w = cfg.width
    return nn.Sequential(
        nn.Conv2d(1, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),  # (B, 1, 28, 28) -> (B, 16, 28, 28)
        _Residual(w, w, 1),  # -> (B, 16, 28, 28)
        _Residual(w, 2 * w, 2),  # -> (B, 32, 14, 14)
        _Residual(2 * w, 4 * w, 2),  # -> (B, 64, 7, 7)
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # -> (B, 64)
        nn.Linear(4 * w, cfg.feature_dim), nn.ReLU(),  # -> (B, 128): the feature space
    )


JUDGE_BODIES = {"cnn": _cnn_body, "resnet": _resnet_body}  # keys: limits.JUDGE_ARCHS
JUDGE_WIDTHS = {"cnn": 32, "resnet": 16}  # the shipped judges' base widths


class Judge(nn.Module):
    def __init__(self, cfg: JudgeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.body = JUDGE_BODIES[cfg.arch](cfg)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(cfg.feature_dim, cfg.num_classes))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], (B, 1, S, S) -> the judge's size by area averaging."""
        if x.shape[-1] != self.cfg.image_size:
            x = F.interpolate(x, size=(self.cfg.image_size, self.cfg.image_size), mode="area")
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def to_unit(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W) -> float (N, 1, H, W) in [-1, 1], the generators' output range."""
    x = torch.as_tensor(images)
    return x.unsqueeze(1).float().div(127.5).sub(1.0)


def _shift(x: torch.Tensor, gen: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random translations of up to max_shift pixels: the augmentation that takes a small CNN past 99.3%."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)  # (n, 1, h + 4, w + 4), background is -1
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2, n), generator=gen)
    rows = dy[:, None, None] + torch.arange(h)[None, :, None]  # (n, h, 1)
    cols = dx[:, None, None] + torch.arange(w)[None, None, :]  # (n, 1, w)
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)  # (n, 1, h, w)


@torch.no_grad()
def predict(judge: Judge, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Predicted classes of images in [-1, 1] (any size: the judge area-averages them), on the CPU."""
    judge.eval()
    device = next(judge.parameters()).device
    return torch.cat([judge(x[i:i + batch].to(device)).argmax(1).cpu() for i in range(0, len(x), batch)])


def accuracy(judge: Judge, split: Split, x: torch.Tensor | None = None) -> tuple[float, list[float]]:
    """Overall and per-class accuracy of the judge on a split (or on x, that split's images transformed)."""
    preds = predict(judge, to_unit(split.images) if x is None else x)
    labels = torch.from_numpy(split.labels)
    per_class = [float((preds[labels == k] == k).float().mean()) for k in range(judge.cfg.num_classes)]
    return float((preds == labels).float().mean()), per_class


def blur(x: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """Gaussian blur of images in [-1, 1] (background -1 beyond the border): a bad-image reference."""
    r = int(3 * sigma)
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), value=-1.0), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), value=-1.0), k.view(1, 1, -1, 1))


ROUND_TRIP_SIZE = 64  # the 64x64 zoo models' training side
BLUR_SIGMA = 2.0  # the blurred-test reference of FD-judge


def through_resize(images: np.ndarray, side: int, judge: Judge, chunk: int = 5000) -> torch.Tensor:
    """uint8 (N, H, W) -> [-1, 1] at the judge's size, by way of a model's training data at `side`
    (train.data.prepare_images, the resize training uses, then the judge's area average)."""
    from gantool.train.data import prepare_images

    if side == judge.cfg.image_size:
        return to_unit(images)
    return torch.cat([judge.prepare(prepare_images(images[i:i + chunk], side).float().div(127.5).sub(1.0))
                      for i in range(0, len(images), chunk)])


def class_counts(preds: np.ndarray, labels: np.ndarray | None, k: int) -> dict[str, Any]:
    """What a judge's classes of samples say: mode coverage, and label accuracy where labels were asked."""
    hist = np.bincount(preds, minlength=k) / len(preds)
    out: dict[str, Any] = {"mode_coverage": {"class_share": hist.tolist(), "worst_class": int(hist.argmin()),
                                             "worst_class_share": float(hist.min())}}
    if labels is not None:
        ok = preds == labels
        out["label_accuracy"] = {"overall": float(ok.mean()),
                                 "per_class": [float(ok[labels == c].mean()) for c in range(k)]}
    return out


def robustness(judge: Judge, test: Split) -> dict[str, float]:
    """Accuracy on real test digits, on the same digits after the 64x64 models' round trip (their
    training resize, then the judge's area average: the ceiling for their label accuracy), and
    blurred: a judge that still reads blurred digits is lenient with a generator's blurry ones."""
    real = to_unit(test.images)
    return {"real": accuracy(judge, test, real)[0],
            f"round_trip_{ROUND_TRIP_SIZE}": accuracy(judge, test, through_resize(test.images, ROUND_TRIP_SIZE,
                                                                                  judge))[0],
            f"blurred_sigma{BLUR_SIGMA:g}": accuracy(judge, test, blur(real, BLUR_SIGMA))[0]}


def check_judge_data(judge: Judge, splits: Sequence[Split], source: str, where: str) -> None:
    """A judge scores only the data it learned: another dataset's numbers would be meaningless (an
    MNIST judge on another 10-class IDX set reports a worst class share of 0%). Compared by the
    decoded arrays' digests (train, then test), so a gzipped and an unpacked copy of one dataset pass."""
    for kind, split, want in zip(("training", "test"), splits, (judge.cfg.data_digest, judge.cfg.test_digest)):
        got = split.digest()
        if want and got != want:
            raise DataError(f"the {kind} split in {where} is not the data the {judge.cfg.arch} judge was trained and "
                            f"tested on (its arrays' digest {got[:12]}, the judge's {want[:12]}); {source} would "
                            f"measure with a judge that does not know these images.",
                            note=f"train one on it: gantool judge train --data-dir {where} -o judge.safetensors, "
                                 f"then pass --judge judge.safetensors.")


def train_judge(train: Split, test: Split, epochs: int | None = None, batch_size: int = 128, seed: int = 0,
                progress: bool = False, arch: str = "cnn") -> tuple[Judge, dict[str, Any]]:
    """Train a judge on `train` and measure it on `test`; a tqdm bar when progress, log lines otherwise.
    epochs: None for the architecture's own (limits.JUDGE_EPOCHS)."""
    check_seed(seed)
    if arch not in JUDGE_BODIES:
        raise GantoolError(f"unknown judge architecture {arch!r}; allowed: {', '.join(JUDGE_ARCHS)}.")
    epochs = JUDGE_EPOCHS[arch] if epochs is None else epochs
    if len(train.images) < batch_size:
        raise DataError(f"the training split holds {len(train.images)} images, fewer than one batch of the judge's "
                        f"training ({batch_size}); allowed: at least {batch_size} images.")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    cfg = JudgeConfig(num_classes=train.info.num_classes, image_size=train.info.image_size, dataset=train.info.name,
                      arch=arch, width=JUDGE_WIDTHS[arch], data_digest=train.digest(), test_digest=test.digest())
    judge = Judge(cfg)
    opt = torch.optim.Adam(judge.parameters(), lr=1e-3)
    steps = epochs * (len(train.images) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    images, labels = to_unit(train.images), torch.from_numpy(train.labels)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, unit="step", desc="judge")
    t0 = time.perf_counter()
    for epoch in range(epochs):
        judge.train()
        perm = torch.randperm(len(images), generator=gen)
        for b in range(len(images) // batch_size):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            loss = F.cross_entropy(judge(_shift(images[idx], gen)), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{float(loss.detach()):.4f}")
        if bar is None:
            log.info("judge epoch %d/%d loss %.4f %.0fs", epoch + 1, epochs, float(loss.detach()),
                     time.perf_counter() - t0)
    if bar is not None:
        bar.close()
    acc, per_class = accuracy(judge, test)
    metrics = {"test_accuracy": acc, "per_class_accuracy": per_class, "epochs": epochs, "seed": seed,
               "train_seconds": round(time.perf_counter() - t0, 1), "data_files": dict(train.info.files),
               "robustness": robustness(judge, test)}
    return judge.eval(), metrics


def save_judge(path: str | Path, judge: Judge, metrics: dict[str, Any]) -> None:
    from safetensors.torch import save

    meta = {"gantool_judge": json.dumps(dataclasses.asdict(judge.cfg)), "metrics": json.dumps(metrics)}
    atomic_write_bytes(path, save({k: v.contiguous() for k, v in judge.state_dict().items()}, metadata=meta))


@dataclass
class NamedJudge:
    name: str  # what reports call it: the file's name
    judge: Judge
    metrics: dict[str, Any]
    shipped: bool  # chosen by default, not by --judge: it must know the data it is asked to measure


def load_judges(paths: Sequence[str | Path] = ()) -> list[NamedJudge]:
    """The judges of one evaluation, primary first: those given, or the shipped ones."""
    from gantool.fileio import same_file

    if len(paths) > MAX_JUDGES:
        raise GantoolError(f"--judge was given {len(paths)} times; allowed: at most {MAX_JUDGES} (a primary judge, "
                           f"whose features FD uses, and a second).")
    if len(paths) == 2 and same_file(paths[0], paths[1]):
        raise GantoolError(f"--judge names {paths[0]} twice; a second judge must be another one.")
    shipped = not paths
    chosen = list(SHIPPED_JUDGES.values()) if shipped else [Path(p) for p in paths]
    return [NamedJudge(Path(p).name, *load_judge(p), shipped=shipped) for p in chosen]


def load_judge(path: str | Path | None = None) -> tuple[Judge, dict[str, Any]]:
    """Load a judge (the shipped MNIST one by default), in eval mode, with its recorded metrics."""
    from gantool.train.checkpoint import load_safetensors, load_weights

    path = Path(path) if path is not None else SHIPPED_JUDGE
    meta, state = load_safetensors(path, "judge")
    try:
        cfg = JudgeConfig(**json.loads(meta["gantool_judge"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: not a gantool judge (no valid config: {e}).") from None
    if cfg.schema_version != JUDGE_SCHEMA_VERSION:
        raise CheckpointError(f"{path}: judge schema {cfg.schema_version}; this gantool reads {JUDGE_SCHEMA_VERSION}.")
    lowest = {"num_classes": 1, "image_size": 4, "width": 1, "feature_dim": 1}  # each at most 4096
    bad = [f"{k}={getattr(cfg, k)!r}" for k, low in lowest.items() if isinstance(getattr(cfg, k), bool)
           or not isinstance(getattr(cfg, k), int) or not low <= getattr(cfg, k) <= 4096]
    if cfg.arch not in JUDGE_BODIES:
        bad.append(f"arch={cfg.arch!r}")
    if bad or not all(isinstance(v, str) for v in (cfg.dataset, cfg.data_digest, cfg.test_digest)):
        raise CheckpointError(f"{path}: its judge config has invalid fields ({', '.join(bad) or 'dataset'}); "
                              f"allowed: integers up to 4096 (image_size >= 4), arch one of "
                              f"{', '.join(JUDGE_ARCHS)}, a dataset name and digest.")
    judge = Judge(cfg)
    load_weights(judge, state, path, "judge", "judge")
    try:
        metrics = json.loads(meta.get("metrics", "{}"))
    except (ValueError, RecursionError):
        metrics = {}
    return judge.eval(), metrics if isinstance(metrics, dict) else {}
