"""The training loop: n_critic D steps, one G step, EMA, logs, grids and exact resume.

One step = one generator update, which consumes n_critic real batches. The data order of an
epoch is a permutation seeded by (seed, epoch), so a resumed run reads the same batches; all
other randomness (z, dropout, GP interpolation) comes from RNG states saved in the
checkpoint, so the resumed run's losses equal an uninterrupted run's.
"""

from __future__ import annotations

import copy
import csv
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gantool.errors import CheckpointError, GantoolError, TrainingDiverged
from gantool.fileio import remove_stale_temps
from gantool.noise import grid_labels, make_noise
from gantool.images import make_grid, save_png, to_uint8
from gantool.spec import ModelSpec
from gantool.train import losses
from gantool.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, run_checkpoint, save_checkpoint
from gantool.train.data import Split
from gantool.train.recipe import Recipe
from gantool.train.zoo import build_models

LOG_FIELDS = ["step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "images_per_s"]


@dataclass
class RunOptions:
    out_dir: Path
    seed: int = 0
    device: str = "cpu"
    max_steps: int | None = None  # absolute step limit, so a resumed run stops at the same place
    max_minutes: float | None = None  # wall-clock limit of this invocation, for equal-time recipe comparisons
    ckpt_every: int = 500
    log_every: int = 50
    resume: bool = False
    progress: bool | None = None  # None: a bar when stdout is a terminal, plain lines otherwise


@dataclass
class TrainResult:
    steps: int
    epochs_done: float
    out_dir: Path
    checkpoint: Path
    grid: Path | None
    last: dict[str, float] = field(default_factory=dict)
    images_per_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "epochs_done": self.epochs_done, "out_dir": str(self.out_dir),
                "checkpoint": str(self.checkpoint), "grid": str(self.grid) if self.grid else None,
                "last": self.last, "images_per_s": self.images_per_s}


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise GantoolError("--device cuda was requested but no CUDA GPU is visible to torch; allowed here: auto, cpu.")
    if device not in ("cpu", "cuda"):
        raise GantoolError(f"unknown device {device!r}; allowed: auto, cpu, cuda.")
    return device


def prepare_images(images: np.ndarray, size: int) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 1, size, size) uint8, resized once up front (bilinear, as the seeds did)."""
    x = torch.from_numpy(images).unsqueeze(1)
    if x.shape[-1] == size:
        return x.contiguous()
    chunks = [F.interpolate(c.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
              .round().clamp(0, 255).to(torch.uint8) for c in x.split(4096)]
    return torch.cat(chunks)


@torch.no_grad()
def sample_grid(g: torch.nn.Module, spec: ModelSpec, seed: int, per_class: int = 10, device: str = "cpu") -> np.ndarray:
    """The fixed-noise grid: one row per class for conditional models, 8x8 otherwise."""
    n = spec.num_classes * per_class if spec.conditional else 64
    z = torch.from_numpy(make_noise(seed, n, spec.latent_dim, spec.noise)).to(device)
    y = torch.from_numpy(grid_labels(spec.num_classes, per_class)).to(device) if spec.conditional else None
    was_training = g.training
    g.eval()
    out = g(z, y).float().cpu().numpy()
    g.train(was_training)
    return make_grid(to_uint8(out), ncol=per_class if spec.conditional else 8)


class Trainer:
    def __init__(self, spec: ModelSpec, recipe: Recipe, split: Split, seed: int = 0, device: str = "cpu") -> None:
        self.spec, self.recipe, self.seed, self.device = spec, recipe, seed, device
        self.data_info = split.info
        self.images = prepare_images(split.images, spec.image_size)
        self.labels = torch.from_numpy(split.labels)
        self.per_step = recipe.batch_size * recipe.n_critic
        self.steps_per_epoch = len(self.images) // self.per_step
        if self.steps_per_epoch < 1:
            raise GantoolError(f"the dataset has {len(self.images)} images, fewer than one step needs "
                               f"(batch size {recipe.batch_size} x n_critic {recipe.n_critic}).")
        if device == "cuda":  # same seed, same device, same result: pin cuDNN/cuBLAS to deterministic kernels
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.manual_seed(seed)  # model init and dropout
        pair = build_models(spec, recipe)
        self.g, self.d = pair.generator.to(device).train(), pair.discriminator.to(device).train()
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False) if recipe.ema_decay > 0 else None
        self.opt_g = torch.optim.Adam(self.g.parameters(), recipe.lr_g, betas=(recipe.beta1, recipe.beta2))
        self.opt_d = torch.optim.Adam(self.d.parameters(), recipe.lr_d, betas=(recipe.beta1, recipe.beta2))
        self.rng = torch.Generator().manual_seed(seed + 1)  # z and GP interpolation
        self.step_count = 0
        self.cpu_seconds = 0.0  # process CPU time spent training, summed across resumes (for the model card)
        self._perm: tuple[int, torch.Tensor] | None = None

    # --- data -------------------------------------------------------------------------------
    def _batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The index-th batch of the run, from a permutation seeded by (seed, epoch)."""
        per_epoch = self.steps_per_epoch * self.recipe.n_critic
        epoch, b = divmod(index, per_epoch)
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = (epoch, torch.randperm(len(self.images), generator=g))
        idx = self._perm[1][b * self.recipe.batch_size:(b + 1) * self.recipe.batch_size]
        x = self.images[idx].to(self.device).float().div_(127.5).sub_(1.0)
        return x, self.labels[idx].to(self.device)

    def _noise(self, n: int) -> torch.Tensor:
        if self.spec.noise == "uniform":
            return (torch.rand(n, self.spec.latent_dim, generator=self.rng) * 2 - 1).to(self.device)
        return torch.randn(n, self.spec.latent_dim, generator=self.rng).to(self.device)

    # --- one step -----------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        r, kind = self.recipe, self.recipe.loss
        for k in range(r.n_critic):
            x, y = self._batch(self.step_count * r.n_critic + k)
            # Fakes take the real batch's labels: the label distribution is the data's, and WGAN-GP's
            # interpolates between a real and a fake image then share one label.
            y = y if self.spec.conditional else None
            if y is not None and r.fake_labels == "uniform":  # the seeds' way: random labels for fakes
                y_fake = torch.randint(0, self.spec.num_classes, y.shape, generator=self.rng).to(self.device)
            else:
                y_fake = y
            if y_fake is not None and r.mode_seeking > 0:  # pairs (i, i + B/2) share a label
                h = x.shape[0] // 2
                y_fake = torch.cat([y_fake[:h], y_fake[:h], y_fake[2 * h:]])
            z = self._noise(x.shape[0])
            fake = self.g(z, y_fake)
            real_out, fake_out = self.d(x, y), self.d(fake.detach(), y_fake)
            d_loss = losses.d_loss(kind, real_out, fake_out, r.label_smoothing)
            if kind == "wgan-gp":
                d_loss = d_loss + r.gp_weight * losses.gradient_penalty(self.d, x, fake.detach(), y, self.rng)
            self._check_finite("D", d_loss)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        g_loss = losses.g_loss(kind, self.d(fake, y_fake))  # the last critic batch's fakes, as in DCGAN
        if r.mode_seeking > 0:
            g_loss = g_loss + r.mode_seeking * losses.mode_seeking(fake, z)
        self._check_finite("G", g_loss)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.step_count += 1
        self._update_ema()
        return {"d_loss": float(d_loss.detach()), "g_loss": float(g_loss.detach()),
                "d_real": losses.d_score(kind, real_out.detach()), "d_fake": losses.d_score(kind, fake_out)}

    def _check_finite(self, which: str, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"{which} loss became {float(loss.detach())} at step {self.step_count + 1}; training "
                                   f"stopped and the last good checkpoint is kept.",
                                   note="lower --lr, add --label-smoothing, or try --loss hinge or --spectral-norm.")

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.g_ema is None:
            return
        decay = min(self.recipe.ema_decay, (1 + self.step_count) / (10 + self.step_count))  # warm-up
        for pe, p in zip(self.g_ema.parameters(), self.g.parameters()):
            pe.lerp_(p, 1.0 - decay)
        for be, b in zip(self.g_ema.buffers(), self.g.buffers()):
            be.copy_(b)

    # --- sampling ------------------------------------------------------------------------------
    def sampler(self) -> torch.nn.Module:
        return self.g_ema if self.g_ema is not None else self.g

    def grid(self, per_class: int = 10) -> np.ndarray:
        return sample_grid(self.sampler(), self.spec, self.seed, per_class, self.device)

    # --- checkpoint state ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(), "recipe": self.recipe.to_dict(), "step": self.step_count, "seed": self.seed,
            "data": {"name": self.data_info.name, "files": dict(self.data_info.files)},
            "generator": self.g.state_dict(), "discriminator": self.d.state_dict(),
            "generator_ema": self.g_ema.state_dict() if self.g_ema is not None else None,
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "cpu_seconds": self.cpu_seconds,
            "rng": {"torch": torch.get_rng_state(), "noise": self.rng.get_state(),
                    "cuda": torch.cuda.get_rng_state() if self.device == "cuda" else None},
        }

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        if ckpt["data"]["files"] != dict(self.data_info.files):
            raise CheckpointError("the data files differ from those the checkpoint was trained on "
                                  f"({sorted(ckpt['data']['files'])}); an exact resume needs the same data.")
        self.g.load_state_dict(ckpt["generator"])
        self.d.load_state_dict(ckpt["discriminator"])
        if self.g_ema is not None:
            self.g_ema.load_state_dict(ckpt["generator_ema"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        self.rng.set_state(ckpt["rng"]["noise"])
        if self.device == "cuda" and ckpt["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"])
        self.step_count = int(ckpt["step"])
        self.cpu_seconds = float(ckpt.get("cpu_seconds", 0.0))


class CsvLog:
    """log.csv, one row per step; on resume, rows past the checkpoint's step are dropped."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        rows: list[dict[str, str]] = []
        if resume_step is not None and path.exists():
            with path.open(newline="") as f:
                for row in csv.DictReader(f):
                    try:
                        if int(row["step"]) <= resume_step and None not in row.values():
                            rows.append(row)
                    except (TypeError, ValueError):
                        break  # a row cut short by a kill
        self.file = path.open("w", newline="")
        self.writer = csv.DictWriter(self.file, LOG_FIELDS)
        self.writer.writeheader()
        self.writer.writerows(rows)

    def write(self, row: dict[str, Any]) -> None:
        self.writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def train(trainer: Trainer, opts: RunOptions, resume_state: dict[str, Any] | None = None) -> TrainResult:
    """Run (or resume) training into opts.out_dir; see the module docstring for exactness.

    resume_state: the run's checkpoint when the caller has already loaded it (it can be large).
    """
    out = opts.out_dir
    ckpt_path = out / CHECKPOINT_NAME
    if opts.resume:
        remove_stale_temps(out)
        trainer.load_state_dict(resume_state if resume_state is not None else load_checkpoint(run_checkpoint(out)))
    elif ckpt_path.exists():
        raise GantoolError(f"{out} already holds a training run ({CHECKPOINT_NAME}).",
                           note="pass --resume to continue it, or choose another -o/--output folder.")
    out.mkdir(parents=True, exist_ok=True)
    (out / "samples").mkdir(exist_ok=True)
    spe = trainer.steps_per_epoch
    total = trainer.recipe.epochs * spe
    if opts.max_steps is not None:
        total = min(total, opts.max_steps)
    start = trainer.step_count
    log = CsvLog(out / "log.csv", start if opts.resume else None)
    show_bar = sys.stdout.isatty() if opts.progress is None else opts.progress
    bar = None
    if show_bar:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, file=sys.stdout, unit="step", dynamic_ncols=True,
                   desc=f"{trainer.spec.arch}")
    last: dict[str, float] = {}
    grid_path: Path | None = None
    rate = 0.0
    t_window, n_window = time.perf_counter(), 0
    cpu_mark = time.process_time()
    deadline = None if opts.max_minutes is None else time.perf_counter() + 60 * opts.max_minutes
    try:
        while trainer.step_count < total:
            last = trainer.step()
            s = trainer.step_count
            n_window += 1
            elapsed = time.perf_counter() - t_window
            rate = n_window * trainer.per_step / max(elapsed, 1e-9)
            epoch = s / spe
            final = s == total or (deadline is not None and time.perf_counter() >= deadline)
            log.write({"step": s, "epoch": round(epoch, 4), **last, "images_per_s": round(rate, 1)})
            if bar is not None:
                bar.set_postfix(ep=f"{epoch:.2f}", D=f"{last['d_loss']:.3f}", G=f"{last['g_loss']:.3f}",
                                Dx=f"{last['d_real']:.2f}", DGz=f"{last['d_fake']:.2f}", img_s=f"{rate:.0f}")
                bar.update(1)
            elif s % opts.log_every == 0 or final:
                print(f"step {s}/{total} epoch {epoch:.2f} D {last['d_loss']:.4f} G {last['g_loss']:.4f} "
                      f"D(x) {last['d_real']:.3f} D(G(z)) {last['d_fake']:.3f} {rate:.0f} img/s", flush=True)
            if elapsed > 30:  # a sliding throughput window
                t_window, n_window = time.perf_counter(), 0
            epoch_end = s % spe == 0
            if epoch_end or final:
                grid_path = out / "samples" / (f"epoch_{s // spe:03d}.png" if epoch_end else f"step_{s:07d}.png")
                save_png(grid_path, trainer.grid(), scale=2)
            if epoch_end or final or s % opts.ckpt_every == 0:
                log.flush()
                now = time.process_time()
                trainer.cpu_seconds, cpu_mark = trainer.cpu_seconds + now - cpu_mark, now
                save_checkpoint(ckpt_path, trainer.state_dict())
            if final:
                break
    finally:
        log.close()
        if bar is not None:
            bar.close()
    return TrainResult(steps=trainer.step_count, epochs_done=round(trainer.step_count / spe, 4), out_dir=out,
                       checkpoint=ckpt_path, grid=grid_path, last=last, images_per_s=round(rate, 1))
