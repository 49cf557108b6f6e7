"""The training loop: n_critic D steps, one G step, EMA, logs, grids and exact resume.

One step = one generator update, which consumes n_critic real batches. The data order of an
epoch is a permutation seeded by (seed, epoch), so a resumed run reads the same batches; all
other randomness (z, dropout, GP interpolation) comes from RNG states saved in the
checkpoint, so the resumed run's losses equal an uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import torch

from gantool.contract import GRID_COLUMNS, GRID_IMAGES, grid_columns, grid_labels
from gantool.errors import CheckpointError, GantoolError, TrainingDiverged
from gantool.fileio import atomic_write_bytes, remove_stale_temps
from gantool.images import make_grid, save_png, to_uint8
from gantool.noise import make_noise
from gantool.spec import ModelSpec
from gantool.train import losses
from gantool.train.checkpoint import (
    BEST_NAME,
    CHECKPOINT_NAME,
    EVALS_DIR,
    load_checkpoint,
    load_weights,
    run_checkpoint,
    save_checkpoint,
)
from gantool.train.data import Split, prepare_images
from gantool.train.distributed import World, check_world, no_sync, wrap
from gantool.train.limits import check_seed
from gantool.train.precision import TrainPrecision, choose_precision, describe
from gantool.train.recipe import Recipe
from gantool.train.zoo import build_models, convolutional

if TYPE_CHECKING:
    from gantool.train.tensorboard_log import TensorBoardLog
    from gantool.train.watch import TrainingWatch

log = logging.getLogger(__name__)

LOG_FIELDS = ["step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "images_per_s"]


class FeatureDiscriminator(Protocol):
    """What every zoo discriminator has beside forward = head(features(x, labels), labels)."""

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...

    def head(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...


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
    eval_every: int | None = None  # --eval-every: every rank checkpoints at those steps, rank 0 measures
    tensorboard: Path | None = None  # --tensorboard: rank 0 writes log.csv's rows and the grids there as events


@dataclass
class TrainResult:
    steps: int
    epochs_done: float
    out_dir: Path
    checkpoint: Path
    grid: Path | None
    last: dict[str, float] = field(default_factory=dict)
    images_per_s: float = 0.0  # all ranks together
    timing: dict[str, float] = field(default_factory=dict)  # StepClock.report()
    main: bool = True  # False on the other ranks of a torchrun job, which print nothing
    precision: dict[str, Any] = field(default_factory=dict)  # TrainPrecision.to_dict()
    processes: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "epochs_done": self.epochs_done, "out_dir": str(self.out_dir),
                "checkpoint": str(self.checkpoint), "grid": str(self.grid) if self.grid else None,
                "last": self.last, "images_per_s": self.images_per_s, "timing": self.timing,
                "precision": self.precision, "processes": self.processes}


def resolve_device(device: str) -> str:
    """auto/cpu/cuda -> cpu or cuda: the one reading of --device for every command that has it."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise GantoolError("--device cuda was requested but no CUDA GPU is visible to torch; allowed here: auto, cpu.")
    if device not in ("cpu", "cuda"):
        raise GantoolError(f"unknown device {device!r}; allowed: auto, cpu, cuda.")
    return device


@torch.no_grad()
def sample_grid(g: torch.nn.Module, spec: ModelSpec, seed: int, per_label: int = GRID_COLUMNS,
                device: str = "cpu", truncation: float = 1.0) -> np.ndarray:
    """The fixed-noise grid, laid out as gantool.contract says (as `gantool sample` and the runtime do):
    one row of per_label images per class for conditional models, GRID_IMAGES images otherwise."""
    labels = grid_labels(range(spec.num_classes), per_label) if spec.conditional else None
    n = len(labels) if labels is not None else GRID_IMAGES
    z = torch.from_numpy(make_noise(seed, n, spec.latent_dim, spec.noise, truncation)).to(device)
    y = torch.from_numpy(labels).to(device) if labels is not None else None
    was_training = g.training
    g.eval()
    out = g(z, y).float().cpu().numpy()
    g.train(was_training)
    return make_grid(to_uint8(out, *spec.output_range), ncol=grid_columns(spec.conditional, per_label, n))


class Trainer:
    """One training run: spec, recipe, data, seed and device, set here once; state_dict() carries them
    into the checkpoint and load_state_dict() continues from one exactly."""

    def __init__(self, spec: ModelSpec, recipe: Recipe, split: Split, seed: int = 0, device: str = "cpu",
                 precision: str | TrainPrecision = "fp32", world: World | None = None) -> None:
        device = resolve_device(device)
        self.spec, self.recipe, self.seed, self.device = spec, recipe, check_seed(seed), device
        self.world = world = world or World()
        self.data_info = split.info
        self.images = prepare_images(split.images, spec.image_size)
        self.labels = torch.from_numpy(split.labels)
        self.per_step = recipe.batch_size * recipe.n_critic * world.size  # real images per step, all ranks
        self.steps_per_epoch = len(self.images) // self.per_step
        if self.steps_per_epoch < 1:
            ranks = f" x {world.size} processes" if world.active else ""
            raise GantoolError(f"the dataset has {len(self.images)} images, fewer than one step needs "
                               f"(batch size {recipe.batch_size} x n_critic {recipe.n_critic}{ranks}).")
        if device == "cuda":  # same seed, same device, same result: pin cuDNN/cuBLAS to deterministic kernels
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.manual_seed(seed)  # model init and dropout
        pair = build_models(spec, recipe)
        if not isinstance(precision, TrainPrecision):
            precision = choose_precision(precision, device, convolutional(spec.arch))
        self.precision = precision
        self.g = precision.prepare(pair.generator.to(device)).train()
        self.d = precision.prepare(pair.discriminator.to(device)).train()
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False) if recipe.ema_decay > 0 else None
        self.opt_g = torch.optim.Adam(self.g.parameters(), recipe.lr_g, betas=(recipe.beta1, recipe.beta2))
        self.opt_d = torch.optim.Adam(self.d.parameters(), recipe.lr_d, betas=(recipe.beta1, recipe.beta2))
        # What the steps call: DDP wrappers in a torchrun job (rank 0's weights broadcast), else g and d.
        self.g_train, self.d_train = wrap(self.g, world, device), wrap(self.d, world, device)
        if world.active:  # every rank its own dropout stream; the init above was the same on all
            torch.manual_seed(world.rank_seed(seed))
        self.rng = torch.Generator().manual_seed(world.rank_seed(seed) + 1)  # z and GP interpolation
        self.step_count = 0
        self.cpu_seconds = 0.0  # process CPU time spent training, summed across resumes (for the model card)
        self._perm: tuple[int, torch.Tensor] | None = None
        self.data_seconds = 0.0  # wall time in _batch, read by the loop's StepClock

    # --- data -------------------------------------------------------------------------------
    def _batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's slice of the index-th (global) batch of the run, from a permutation seeded by
        (seed, epoch) that every rank draws alike."""
        per_epoch = self.steps_per_epoch * self.recipe.n_critic
        epoch, b = divmod(index, per_epoch)
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = (epoch, torch.randperm(len(self.images), generator=g))
        t0 = time.perf_counter()
        idx = self.world.shard(self._perm[1], b, self.recipe.batch_size)
        x = self.images[idx].to(self.device).float().div_(127.5).sub_(1.0)
        if self.precision.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = self.labels[idx].to(self.device)
        self.data_seconds += time.perf_counter() - t0
        return x, y

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
            last = k == r.n_critic - 1  # only the last critic batch's fakes train G: no graph for the others
            with self._autocast():  # forward passes only: losses and the penalty's norm are taken in fp32
                with torch.set_grad_enabled(last):
                    fake = self.g_train(z, y_fake)
                real_out, fake_out = self.d_train(x, y).float(), self.d_train(fake.detach(), y_fake).float()
            d_loss = losses.d_loss(kind, real_out, fake_out, r.label_smoothing)
            if kind == "wgan-gp":
                gp_fake = fake.detach() if gp_fake is None else gp_fake
                d_loss = d_loss + r.gp_weight * losses.gradient_penalty(self.d_train, x, gp_fake, y, self.rng,
                                                                        self._autocast)
            d_mean = self.world.mean(d_loss.detach())  # one verdict for all ranks: none may step alone
            self._check_finite("D", d_mean)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        with no_sync(self.d_train):  # D's gradients from G's loss are thrown away: no need to average them
            if r.feature_matching > 0:
                g_loss = self._feature_matching_g_loss(x, y, fake, y_fake)
            else:
                with self._autocast():
                    g_out = self.d_train(fake, y_fake).float()
                g_loss = losses.g_loss(kind, g_out)  # the last critic batch's fakes, as in DCGAN
            if r.mode_seeking > 0:
                g_loss = g_loss + r.mode_seeking * losses.mode_seeking(fake.float(), z)
            g_mean = self.world.mean(g_loss.detach())
            self._check_finite("G", g_mean)
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
        self.opt_g.step()
        self.step_count += 1
        self._update_ema()
        scores = self.world.mean(torch.stack([losses.d_prob(kind, real_out), losses.d_prob(kind, fake_out)]))
        return {"d_loss": float(d_mean), "g_loss": float(g_mean), "d_real": float(scores[0]),
                "d_fake": float(scores[1])}

    def _feature_matching_g_loss(self, x: torch.Tensor, y: torch.Tensor | None, fake: torch.Tensor,
                                 y_fake: torch.Tensor | None) -> torch.Tensor:
        """G's loss with feature matching (Salimans et al. 2016): W ||E f(x) - E f(G(z))||^2 on D's features()
        (just updated), plus the adversarial term unless feature_matching_only. The real batch is the last D
        step's, looked at again without gradients: no new data and no new draw from the noise stream. The
        fakes' features are computed once and give D's score too (head), so the fakes cross D once, as without
        feature matching. D is called unwrapped: in a job its gradients from G's loss are not averaged anyway."""
        r, d = self.recipe, cast(FeatureDiscriminator, self.d)
        with self._autocast():
            with torch.no_grad():
                real_features = d.features(x, y)
            fake_features = d.features(fake, y_fake)
            g_out = None if r.feature_matching_only else d.head(fake_features, y_fake).float()
        loss = r.feature_matching * losses.feature_matching(real_features.float(), fake_features.float())  # fp32
        return loss if g_out is None else losses.g_loss(r.loss, g_out) + loss

    @torch.no_grad()
    def _fakes_aside(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """G(z, y) without gradients and without moving G's BatchNorm statistics: an extra look, not a step."""
        saved = [b.clone() for b in self.g.buffers()]
        with self._autocast():
            out = self.g(z, y).float()
        for b, s in zip(self.g.buffers(), saved):
            b.copy_(s)
        return out

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return self.precision.autocast(self.device)

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
            "device": self.device, "precision": self.precision.to_dict(),
            "data": {"name": self.data_info.name, "files": dict(self.data_info.files), "images": len(self.images)},
            "generator": self.g.state_dict(), "discriminator": self.d.state_dict(),
            "generator_ema": self.g_ema.state_dict() if self.g_ema is not None else None,
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "cpu_seconds": self.cpu_seconds,
            "rng": self._rng_states(), "world_size": self.world.size, "machine": _machine(),
        }

    def _rng_states(self) -> dict[str, Any]:
        """Rank 0's RNG states, and in a job every rank's (gathered to all: only rank 0 writes them)."""
        states: dict[str, Any] = {"torch": torch.get_rng_state(), "noise": self.rng.get_state(),
                                  "cuda": torch.cuda.get_rng_state() if self.device == "cuda" else None}
        if self.world.active:  # dropout (CPU or CUDA), z and GP streams differ per rank: keep each rank's
            gathered = {k: self.world.gather(v) for k, v in states.items() if v is not None}
            states["ranks"] = [{k: parts[r] for k, parts in gathered.items()} for r in range(self.world.size)]
        return states

    def load_state_dict(self, ckpt: dict[str, Any], source: str = "the checkpoint") -> None:
        """Continue exactly from a checkpoint; CheckpointError (one line) for any part that is missing
        or does not fit, before anything of the run changes on disk."""
        data = ckpt.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise CheckpointError(f"{source}: it records no data files; an exact resume needs to know its data.")
        if data["files"] != dict(self.data_info.files):
            raise CheckpointError(f"{source}: the data files differ from those the checkpoint was trained on "
                                  f"({sorted(data['files'])}); an exact resume needs the same data.")
        saved = TrainPrecision.from_dict(ckpt.get("precision"), source)
        if (saved.name, saved.channels_last) != (self.precision.name, self.precision.channels_last):
            raise CheckpointError(f"{source}: the run trained in {saved.label}, but this Trainer runs "
                                  f"{self.precision.label}; an exact resume needs the same precision.",
                                  note="pass TrainPrecision.from_dict(checkpoint['precision']) as precision "
                                       "(gantool train --resume does).")
        check_world(ckpt, self.world, source)
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
            own = rng["ranks"][self.world.rank] if self.world.active else rng
            torch.set_rng_state(own["torch"])
            self.rng.set_state(own["noise"])
            if self.device == "cuda" and own.get("cuda") is not None:
                torch.cuda.set_rng_state(own["cuda"])
        except (RuntimeError, TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{source}: its saved RNG state is corrupt ({_first_line(e)}); an exact resume "
                                  f"needs it.", note="start a new run, or warm-start one from it with --model.") from None
        self.step_count = step
        self.cpu_seconds = float(cpu)


def _machine() -> dict[str, Any]:
    """Where the run last trained, for the model card (the CPU decides the precision auto picks)."""
    from gantool.cpu import cpu_info

    cpu = cpu_info()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu_model": cpu.model, "cpu_flags": cpu.notable_flags, "cpus": cpu.cpus, "gpu": gpu,
            "torch": str(torch.__version__)}


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


class RunOutputs:
    """What a run writes (log.csv, the progress bar or log lines, grids, checkpoints): rank 0's job.
    Other ranks of a torchrun job hold a silent one, but still take part in the checkpoint's
    collectives (its RNG states are gathered from every rank)."""

    def __init__(self, trainer: Trainer, opts: RunOptions, total: int, watch: TrainingWatch | None = None) -> None:
        self.trainer, self.opts, self.total, self.watch = trainer, opts, total, watch
        self.main = trainer.world.is_main
        self.ckpt_path = opts.out_dir / CHECKPOINT_NAME
        self.grid_path: Path | None = None
        self.csv_log = CsvLog(opts.out_dir / "log.csv", trainer.step_count if opts.resume else None) \
            if self.main else None
        self.tb: TensorBoardLog | None = None
        if opts.tensorboard is not None and self.main:
            from gantool.train.tensorboard_log import TensorBoardLog

            self.tb = TensorBoardLog(opts.tensorboard, trainer.step_count if opts.resume else None)
        show_bar = sys.stdout.isatty() if opts.progress is None else opts.progress
        self.bar = None
        if show_bar and self.main:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=trainer.step_count, file=sys.stdout, unit="step",
                            dynamic_ncols=True, desc=f"{trainer.spec.arch}")

    def step(self, last: dict[str, float], rate: float, final: bool) -> None:
        s, epoch = self.trainer.step_count, self.trainer.step_count / self.trainer.steps_per_epoch
        row = {"step": s, "epoch": round(epoch, 4), **last, "images_per_s": round(rate, 1)}
        if self.csv_log is not None:
            self.csv_log.write(row)
        if self.tb is not None:
            t = self.trainer
            self.tb.scalars(s, row, {"G": t.opt_g.param_groups[0]["lr"], "D": t.opt_d.param_groups[0]["lr"]})
        if self.bar is not None:
            self.bar.set_postfix(ep=f"{epoch:.2f}", D=f"{last['d_loss']:.3f}", G=f"{last['g_loss']:.3f}",
                                 Dx=f"{last['d_real']:.2f}", DGz=f"{last['d_fake']:.2f}", img_s=f"{rate:.0f}")
            self.bar.update(1)
        elif s % self.opts.log_every == 0 or final:
            log.info("step %d/%d epoch %.2f D %.4f G %.4f D(x) %.3f D(G(z)) %.3f %.0f img/s", s, self.total, epoch,
                     last["d_loss"], last["g_loss"], last["d_real"], last["d_fake"], rate)

    def grid(self, epoch_end: bool) -> None:
        s, spe = self.trainer.step_count, self.trainer.steps_per_epoch
        if self.main:
            self.grid_path = self.opts.out_dir / "samples" / (f"epoch_{s // spe:03d}.png" if epoch_end
                                                              else f"step_{s:07d}.png")
            image = self.trainer.grid()
            save_png(self.grid_path, image, scale=2)
            if self.tb is not None:
                self.tb.image(s, image)

    def checkpoint(self, measure: bool = False) -> None:
        """measure: an --eval-every step; the watch may keep this same state as best.pt."""
        if self.csv_log is not None:
            self.csv_log.flush()
        if self.tb is not None:
            self.tb.flush()
        state = self.trainer.state_dict()  # a collective in a job: every rank gets here at the same step
        if not self.main:
            return
        save_checkpoint(self.ckpt_path, state)
        if measure and self.watch is not None:
            t = self.trainer
            row = self.watch.record(t.step_count, t.step_count / t.steps_per_epoch, t.sampler(), state)
            best = self.watch.best or row
            line = (f"eval step {row['step']}: FD-judge {row['fd_judge']:.2f}"
                    + (f", label accuracy {row['label_accuracy']:.2%}" if self.trainer.spec.conditional else "") + f" (best {best['fd_judge']:.2f} at step {best['step']})")
            if self.bar is not None:
                self.bar.write(line)
            else:
                log.info("%s", line)

    def close(self) -> None:
        if self.csv_log is not None:
            self.csv_log.close()
        if self.tb is not None:
            self.tb.close()
        if self.bar is not None:
            self.bar.close()


def _prepare_run_dir(trainer: Trainer, opts: RunOptions, resume_state: dict[str, Any] | None) -> None:
    ckpt_path = opts.out_dir / CHECKPOINT_NAME
    if opts.resume:
        trainer.load_state_dict(resume_state if resume_state is not None else load_checkpoint(run_checkpoint(
            opts.out_dir)), source=str(ckpt_path))
        if trainer.world.is_main:
            remove_stale_temps(opts.out_dir)
    elif ckpt_path.exists():
        raise GantoolError(f"{opts.out_dir} already holds a training run ({CHECKPOINT_NAME}).",
                           note="pass --resume to continue it, or choose another -o/--output folder.")
    else:  # another run's best or kept evaluations: a new run's --eval-every would replace them
        for kept in (BEST_NAME, EVALS_DIR):
            if (opts.out_dir / kept).exists():
                raise GantoolError(f"{opts.out_dir} already holds {kept} from another run; a new run here would "
                                   f"replace it.", note="choose another -o/--output folder, or move it aside.")
        if opts.tensorboard is not None:
            from gantool.train.tensorboard_log import refuse_other_events

            refuse_other_events(opts.tensorboard)
    if trainer.world.is_main:
        (opts.out_dir / "samples").mkdir(parents=True, exist_ok=True)


def train(trainer: Trainer, opts: RunOptions, resume_state: dict[str, Any] | None = None,
          watch: TrainingWatch | None = None) -> TrainResult:
    """Run (or resume) training into opts.out_dir; see the module docstring for exactness.

    resume_state: the run's checkpoint when the caller has already loaded it (it can be large).
    watch: rank 0's evaluator for opts.eval_every (train/watch.py).
    """
    _prepare_run_dir(trainer, opts, resume_state)
    if watch is not None:
        watch.start(trainer.step_count if opts.resume else None, trainer.seed)
    jobs = f"; {trainer.world.size} processes" if trainer.world.active else ""
    log.info("precision: %s%s", describe(trainer.precision, trainer.device, convolutional(trainer.spec.arch),
                                          opts.resume), jobs)
    spe = trainer.steps_per_epoch
    total = trainer.recipe.epochs * spe
    if opts.max_steps is not None:
        total = min(total, opts.max_steps)
    outputs = RunOutputs(trainer, opts, total, watch)
    last: dict[str, float] = {}
    rate = 0.0
    t_window, n_window = time.perf_counter(), 0
    cpu_mark = time.process_time()
    clock = StepClock(trainer)
    deadline = None if opts.max_minutes is None else time.perf_counter() + 60 * opts.max_minutes
    try:
        while trainer.step_count < total:
            with clock.in_step():
                last = trainer.step()
            s = trainer.step_count
            n_window += 1
            elapsed = time.perf_counter() - t_window
            rate = n_window * trainer.per_step / max(elapsed, 1e-9)
            final = s == total or (deadline is not None and trainer.world.any(time.perf_counter() >= deadline))
            outputs.step(last, rate, final)
            if elapsed > 30:  # a sliding throughput window
                t_window, n_window = time.perf_counter(), 0
            epoch_end = s % spe == 0
            if epoch_end or final:
                outputs.grid(epoch_end)
            measure = opts.eval_every is not None and (s % opts.eval_every == 0 or final)
            if epoch_end or final or s % opts.ckpt_every == 0 or measure:
                now = time.process_time()
                trainer.cpu_seconds += trainer.world.total(now - cpu_mark)  # every rank's CPU time
                cpu_mark = now
                outputs.checkpoint(measure)
            if final:
                break
    finally:
        outputs.close()
    timing = clock.report()
    if timing:
        log.info("time: %.1f s in the training loop: %.1f%% in training steps (%.1f%% of that fetching batches), "
                 "%.1f%% writing logs, grids and checkpoints", timing["wall_s"], 100 * timing["step_share"],
                 100 * timing["data_share_of_step"], 100 * timing["outside_share"])
    return TrainResult(steps=trainer.step_count, epochs_done=round(trainer.step_count / spe, 4), out_dir=opts.out_dir,
                       checkpoint=outputs.ckpt_path, grid=outputs.grid_path, last=last, images_per_s=round(rate, 1),
                       timing=timing, main=trainer.world.is_main, precision=trainer.precision.to_dict(),
                       processes=trainer.world.size)


class StepClock:
    """Where a run's wall time goes: inside trainer.step() (and, of that, fetching batches) or outside
    it (logs, grids, checkpoints). A faster step must not leave the run waiting on anything else."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer, self.step_s, self.t0 = trainer, 0.0, time.perf_counter()
        trainer.data_seconds = 0.0

    @contextlib.contextmanager
    def in_step(self) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.step_s += time.perf_counter() - t

    def report(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        if wall <= 0 or self.step_s <= 0:
            return {}
        return {"wall_s": round(wall, 3), "step_share": round(self.step_s / wall, 4),
                "data_share_of_step": round(self.trainer.data_seconds / self.step_s, 4),
                "outside_share": round(1 - self.step_s / wall, 4)}
