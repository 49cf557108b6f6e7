"""The training loop: n_critic D steps, one G step, EMA, logs, grids and exact resume.

One step = one generator update, which consumes n_critic real batches. The data order of an
epoch is a permutation seeded by (seed, epoch), so a resumed run reads the same batches; all
other randomness (z, dropout, GP interpolation) comes from RNG states saved in the
checkpoint, so the resumed run's losses equal an uninterrupted run's.
"""

from __future__ import annotations

import copy
import csv
import io
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gantool.contract import GRID_COLUMNS, GRID_IMAGES, grid_columns, grid_labels
from gantool.errors import CheckpointError, GantoolError, TrainingDiverged
from gantool.fileio import atomic_write_bytes, remove_stale_temps
from gantool.images import make_grid, save_png, to_uint8
from gantool.noise import make_noise
from gantool.spec import ModelSpec
from gantool.train import losses
from gantool.train.checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    load_weights,
    run_checkpoint,
    save_checkpoint,
)
from gantool.train.data import Split
from gantool.train.limits import check_seed
from gantool.train.recipe import Recipe
from gantool.train.zoo import build_models

log = logging.getLogger(__name__)

LOG_FIELDS = ["step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "images_per_s"]


@dataclass
class RunOptions:
    """How one invocation runs. What the run *is* (spec, recipe, seed, device) lives in the Trainer,
    which writes it into the checkpoint."""

    out_dir: Path
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
    """auto/cpu/cuda -> cpu or cuda: the one reading of --device for every command that has it."""
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
def sample_grid(g: torch.nn.Module, spec: ModelSpec, seed: int, per_label: int = GRID_COLUMNS,
                device: str = "cpu") -> np.ndarray:
    """The fixed-noise grid, laid out as gantool.contract says (as `gantool sample` and the runtime do):
    one row of per_label images per class for conditional models, GRID_IMAGES images otherwise."""
    labels = grid_labels(range(spec.num_classes), per_label) if spec.conditional else None
    n = len(labels) if labels is not None else GRID_IMAGES
    z = torch.from_numpy(make_noise(seed, n, spec.latent_dim, spec.noise)).to(device)
    y = torch.from_numpy(labels).to(device) if labels is not None else None
    was_training = g.training
    g.eval()
    out = g(z, y).float().cpu().numpy()
    g.train(was_training)
    return make_grid(to_uint8(out, *spec.output_range), ncol=grid_columns(spec.conditional, per_label, n))


class Trainer:
    """One training run: spec, recipe, data, seed and device, set here once; state_dict() carries them
    into the checkpoint and load_state_dict() continues from one exactly."""

    def __init__(self, spec: ModelSpec, recipe: Recipe, split: Split, seed: int = 0, device: str = "cpu") -> None:
        device = resolve_device(device)
        self.spec, self.recipe, self.seed, self.device = spec, recipe, check_seed(seed), device
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
            x, batch_labels = self._batch(self.step_count * r.n_critic + k)
            # Fakes take the real batch's labels: the label distribution is the data's, and WGAN-GP's
            # interpolates between a real and a fake image then share one label.
            y: torch.Tensor | None = batch_labels if self.spec.conditional else None
            y_fake: torch.Tensor | None = y
            if y is not None and r.fake_labels == "uniform":  # the seeds' way: random labels for fakes
                y_fake = torch.randint(0, self.spec.num_classes, y.shape, generator=self.rng).to(self.device)
            if y_fake is not None and r.mode_seeking > 0:  # pairs (i, i + B/2) share a label
                h = x.shape[0] // 2
                y_fake = torch.cat([y_fake[:h], y_fake[:h], y_fake[2 * h:]])
            z = self._noise(x.shape[0])
            # WGAN-GP scores each interpolate of a real image and a fake with one label, the real image's: when
            # the fakes take other labels, the penalty gets its own fakes of the real labels, made before G's
            # graph of `fake` exists (restoring BatchNorm's statistics afterwards would invalidate it).
            gp_fake = None
            if kind == "wgan-gp" and y is not None and y_fake is not None and not torch.equal(y_fake, y):
                gp_fake = self._fakes_aside(z, y)
            fake = self.g(z, y_fake)
            real_out, fake_out = self.d(x, y), self.d(fake.detach(), y_fake)
            d_loss = losses.d_loss(kind, real_out, fake_out, r.label_smoothing)
            if kind == "wgan-gp":
                gp_fake = fake.detach() if gp_fake is None else gp_fake
                d_loss = d_loss + r.gp_weight * losses.gradient_penalty(self.d, x, gp_fake, y, self.rng)
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

    @torch.no_grad()
    def _fakes_aside(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """G(z, y) without gradients and without moving G's BatchNorm statistics: an extra look, not a step."""
        saved = [b.clone() for b in self.g.buffers()]
        out = self.g(z, y)
        for b, s in zip(self.g.buffers(), saved):
            b.copy_(s)
        return out

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

    def grid(self, per_label: int = GRID_COLUMNS) -> np.ndarray:
        return sample_grid(self.sampler(), self.spec, self.seed, per_label, self.device)

    # --- checkpoint state ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(), "recipe": self.recipe.to_dict(), "step": self.step_count, "seed": self.seed,
            "device": self.device,
            "data": {"name": self.data_info.name, "files": dict(self.data_info.files), "images": len(self.images)},
            "generator": self.g.state_dict(), "discriminator": self.d.state_dict(),
            "generator_ema": self.g_ema.state_dict() if self.g_ema is not None else None,
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "cpu_seconds": self.cpu_seconds,
            "rng": {"torch": torch.get_rng_state(), "noise": self.rng.get_state(),
                    "cuda": torch.cuda.get_rng_state() if self.device == "cuda" else None},
        }

    def load_state_dict(self, ckpt: dict[str, Any], source: str = "the checkpoint") -> None:
        """Continue exactly from a checkpoint; CheckpointError (one line) for any part that is missing
        or does not fit, before anything of the run changes on disk."""
        data = ckpt.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise CheckpointError(f"{source}: it records no data files; an exact resume needs to know its data.")
        if data["files"] != dict(self.data_info.files):
            raise CheckpointError(f"{source}: the data files differ from those the checkpoint was trained on "
                                  f"({sorted(data['files'])}); an exact resume needs the same data.")
        step, cpu = ckpt.get("step"), ckpt.get("cpu_seconds", 0.0)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise CheckpointError(f"{source}: its step count {step!r} is not a non-negative integer.")
        if isinstance(cpu, bool) or not isinstance(cpu, (int, float)):
            raise CheckpointError(f"{source}: its cpu_seconds {cpu!r} is not a number.")
        load_weights(self.g, ckpt.get("generator"), source, self.spec.arch, "generator")
        load_weights(self.d, ckpt.get("discriminator"), source, self.spec.arch, "discriminator")
        if self.g_ema is not None:
            load_weights(self.g_ema, ckpt.get("generator_ema"), source, self.spec.arch, "EMA generator")
        for name, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            try:
                opt.load_state_dict(ckpt[name])
            except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as e:
                raise CheckpointError(f"{source}: its optimizer state {name} does not fit this model "
                                      f"({_first_line(e)}).") from None
        rng = ckpt.get("rng")
        try:
            if not isinstance(rng, dict):
                raise TypeError(f"rng is a {type(rng).__name__}, not a dict")
            torch.set_rng_state(rng["torch"])
            self.rng.set_state(rng["noise"])
            if self.device == "cuda" and rng.get("cuda") is not None:
                torch.cuda.set_rng_state(rng["cuda"])
        except (RuntimeError, TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{source}: its saved RNG state is corrupt ({_first_line(e)}); an exact resume "
                                  f"needs it.", note="start a new run, or warm-start one from it with --model.") from None
        self.step_count = step
        self.cpu_seconds = float(cpu)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:160]


class CsvLog:
    """log.csv, one row per step, appended and flushed at every checkpoint.

    On resume, the rows up to the checkpoint's step are kept and later ones (steps the resumed run
    will redo) dropped, by an atomic rewrite before appending: a kill at any moment leaves at least
    every row up to the last checkpoint.
    """

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
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(path, buf.getvalue().encode())
        self.file = path.open("a", newline="")
        self.writer = csv.DictWriter(self.file, LOG_FIELDS)

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
        trainer.load_state_dict(resume_state if resume_state is not None else load_checkpoint(run_checkpoint(out)),
                                source=str(ckpt_path))
        remove_stale_temps(out)
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
    csv_log = CsvLog(out / "log.csv", start if opts.resume else None)
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
            csv_log.write({"step": s, "epoch": round(epoch, 4), **last, "images_per_s": round(rate, 1)})
            if bar is not None:
                bar.set_postfix(ep=f"{epoch:.2f}", D=f"{last['d_loss']:.3f}", G=f"{last['g_loss']:.3f}",
                                Dx=f"{last['d_real']:.2f}", DGz=f"{last['d_fake']:.2f}", img_s=f"{rate:.0f}")
                bar.update(1)
            elif s % opts.log_every == 0 or final:
                log.info("step %d/%d epoch %.2f D %.4f G %.4f D(x) %.3f D(G(z)) %.3f %.0f img/s", s, total, epoch,
                         last["d_loss"], last["g_loss"], last["d_real"], last["d_fake"], rate)
            if elapsed > 30:  # a sliding throughput window
                t_window, n_window = time.perf_counter(), 0
            epoch_end = s % spe == 0
            if epoch_end or final:
                grid_path = out / "samples" / (f"epoch_{s // spe:03d}.png" if epoch_end else f"step_{s:07d}.png")
                save_png(grid_path, trainer.grid(), scale=2)
            if epoch_end or final or s % opts.ckpt_every == 0:
                csv_log.flush()
                now = time.process_time()
                trainer.cpu_seconds, cpu_mark = trainer.cpu_seconds + now - cpu_mark, now
                save_checkpoint(ckpt_path, trainer.state_dict())
            if final:
                break
    finally:
        csv_log.close()
        if bar is not None:
            bar.close()
    return TrainResult(steps=trainer.step_count, epochs_done=round(trainer.step_count / spe, 4), out_dir=out,
                       checkpoint=ckpt_path, grid=grid_path, last=last, images_per_s=round(rate, 1))
