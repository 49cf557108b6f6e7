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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gantool.errors import CheckpointError, DataError
from gantool.fileio import atomic_write_bytes
from gantool.train.data import Split
from gantool.train.limits import check_seed

log = logging.getLogger(__name__)

JUDGE_SCHEMA_VERSION = 1
SHIPPED_JUDGE = Path(str(resources.files("gantool") / "weights" / "judge-mnist.safetensors"))


@dataclass(frozen=True)
class JudgeConfig:
    num_classes: int = 10
    image_size: int = 28  # images of other sizes are area-averaged to this before judging
    width: int = 32
    feature_dim: int = 128
    dataset: str = "mnist"
    schema_version: int = JUDGE_SCHEMA_VERSION


class Judge(nn.Module):
    def __init__(self, cfg: JudgeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        s = cfg.image_size // 4
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),  # (B, 1, 28, 28) -> (B, 32, 28, 28)
            nn.MaxPool2d(2),  # -> (B, 32, 14, 14)
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),  # -> (B, 64, 14, 14)
            nn.MaxPool2d(2),  # -> (B, 64, 7, 7)
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(),  # -> (B, 128, 7, 7)
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(4 * w * s * s, cfg.feature_dim), nn.ReLU(),  # -> (B, 128): the feature space
        )
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
def accuracy(judge: Judge, split: Split, batch: int = 1000) -> tuple[float, list[float]]:
    """Overall and per-class accuracy of the judge on a split."""
    judge.eval()
    preds = torch.cat([judge(to_unit(split.images[i:i + batch])).argmax(1) for i in range(0, len(split.images), batch)])
    labels = torch.from_numpy(split.labels)
    per_class = [float((preds[labels == k] == k).float().mean()) for k in range(judge.cfg.num_classes)]
    return float((preds == labels).float().mean()), per_class


def train_judge(train: Split, test: Split, epochs: int = 6, batch_size: int = 128, seed: int = 0,
                progress: bool = False) -> tuple[Judge, dict[str, Any]]:
    """Train a judge on `train` and measure it on `test`; a tqdm bar when progress, log lines otherwise."""
    check_seed(seed)
    if len(train.images) < batch_size:
        raise DataError(f"the training split holds {len(train.images)} images, fewer than one batch of the judge's "
                        f"training ({batch_size}); allowed: at least {batch_size} images.")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    cfg = JudgeConfig(num_classes=train.info.num_classes, image_size=train.info.image_size, dataset=train.info.name)
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
               "train_seconds": round(time.perf_counter() - t0, 1), "data_files": dict(train.info.files)}
    return judge.eval(), metrics


def save_judge(path: str | Path, judge: Judge, metrics: dict[str, Any]) -> None:
    from safetensors.torch import save

    meta = {"gantool_judge": json.dumps(dataclasses.asdict(judge.cfg)), "metrics": json.dumps(metrics)}
    atomic_write_bytes(path, save({k: v.contiguous() for k, v in judge.state_dict().items()}, metadata=meta))


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
    if bad or not isinstance(cfg.dataset, str):
        raise CheckpointError(f"{path}: its judge config has invalid fields ({', '.join(bad) or 'dataset'}); "
                              f"allowed: integers up to 4096 (image_size >= 4) and a dataset name.")
    judge = Judge(cfg)
    load_weights(judge, state, path, "judge", "judge")
    try:
        metrics = json.loads(meta.get("metrics", "{}"))
    except (ValueError, RecursionError):
        metrics = {}
    return judge.eval(), metrics if isinstance(metrics, dict) else {}
