"""From CLI options to a finished run: resolve data, spec and recipe, then call the loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantool.errors import GantoolError
from gantool.fileio import same_file
from gantool.train.checkpoint import (
    load_checkpoint,
    load_weights,
    run_checkpoint,
    spec_and_recipe,
)
from gantool.train.data import Split, load_split, shown_dir
from gantool.train.distributed import check_world, start, stop, world_from_env
from gantool.train.limits import check_seed
from gantool.train.loop import RunOptions, Trainer, TrainResult, resolve_device, train
from gantool.train.precision import TrainPrecision, check_precision
from gantool.train.recipe import Recipe
from gantool.train.zoo import ZOO, build_spec, entry

if TYPE_CHECKING:
    from gantool.spec import ModelSpec
    from gantool.train.watch import TrainingWatch

DEFAULT_SEED = 0


@dataclass
class TrainRequest:
    """`gantool train` as one config. Seed and device are set here and nowhere else: they flow into
    the Trainer, which writes them into the checkpoint (a --resume takes the seed from there)."""

    model: str  # zoo name or checkpoint path
    run: RunOptions  # where and for how long this invocation runs
    data_dir: str | None = None
    recipe_overrides: dict[str, Any] = field(default_factory=dict)  # Recipe field (or "lr") -> value; None: unset
    image_size: int | None = None
    seed: int | None = None  # None: DEFAULT_SEED for a new run, the checkpoint's on --resume
    device: str = "auto"
    precision: str = "auto"  # auto, fp32 or bf16 (gantool.train.precision); on --resume the run's own wins
    base_recipe: str = "gantool"  # or "seed": the seed notebook's recipe, for like-for-like comparisons
    eval_samples: int | None = None  # --eval-every's sample size [default: watch.WatchOptions']
    judge: str | None = None  # --eval-every's judge [default: the shipped primary judge]
    keep_evals: bool = False  # --keep-evals: every measured checkpoint kept in evals/


def _overrides(o: dict[str, Any]) -> dict[str, Any]:
    """The options the user gave (None: not given); --lr sets both rates unless --lr-g/--lr-d say otherwise."""
    o = {k: v for k, v in o.items() if v is not None}
    if "lr" in o:
        lr = o.pop("lr")
        o.setdefault("lr_g", lr)
        o.setdefault("lr_d", lr)
    return o


def base_recipe(model: str, which: str) -> Recipe:
    e = entry(model)
    if which == "gantool":
        return e.recipe
    if which == "seed" and e.seed_recipe is not None:
        return e.seed_recipe
    allowed = ", ".join(n for n, z in ZOO.items() if z.seed_recipe is not None)
    raise GantoolError(f"--recipe {which!r} is not available for {model}; the seed recipe exists for: {allowed}.")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def run_training(req: TrainRequest) -> TrainResult:
    overrides = _overrides(req.recipe_overrides)
    if req.run.tensorboard is not None:  # a missing extra is refused before any data is read
        from gantool.train.tensorboard_log import check_tensorboard

        check_tensorboard()
    device = resolve_device(req.device)
    if req.seed is not None:
        check_seed(req.seed)
    if not (req.model in ZOO or Path(req.model).is_file()):
        raise GantoolError(f"--model {req.model!r} is neither a zoo model nor a file; "
                           f"allowed: {', '.join(ZOO)} or a checkpoint path.")
    split = load_split(req.data_dir, "train")
    precision: str | TrainPrecision = check_precision(req.precision)
    world = world_from_env()
    init = ckpt = None
    if req.run.resume:
        path = run_checkpoint(req.run.out_dir)
        ckpt = load_checkpoint(path)
        spec, saved = spec_and_recipe(ckpt, path)
        _same_run(req.model, spec.arch, path)
        recipe = saved.replace(**overrides)
        changed = [_option(k) for k in overrides if k != "epochs" and getattr(recipe, k) != getattr(saved, k)]
        if req.image_size is not None and req.image_size != spec.image_size:
            changed.append("--image-size")
        seed = check_seed(ckpt.get("seed"), f"{path}: its seed")
        if req.seed is not None and req.seed != seed:
            changed.append("--seed")
        precision = TrainPrecision.from_dict(ckpt.get("precision"), str(path))
        check_world(ckpt, world, str(path))  # before the job's process group and models exist
        if req.precision not in ("auto", precision.name):
            changed.append("--precision")
        if changed:
            raise GantoolError(f"--resume continues a run with its saved recipe and seed; these options differ from "
                               f"it: {', '.join(changed)}.",
                               note="only --epochs and --max-steps may change on --resume.")
    elif req.model in ZOO:
        spec = build_spec(req.model, split.info, req.image_size)
        recipe = base_recipe(req.model, req.base_recipe).replace(**overrides)
        seed = DEFAULT_SEED if req.seed is None else req.seed
    else:
        init = load_checkpoint(req.model)
        spec, recipe = spec_and_recipe(init, req.model)
        recipe = recipe.replace(**overrides)
        seed = DEFAULT_SEED if req.seed is None else req.seed
        if req.image_size is not None and req.image_size != spec.image_size:
            raise GantoolError(f"--image-size {req.image_size} differs from the checkpoint's {spec.image_size}; "
                               f"a warm start keeps the checkpoint's architecture.")
    idle = recipe.ineffective(overrides, spec.conditional)
    if idle:
        raise GantoolError(f"{'; '.join(idle)}: the option would change nothing.",
                           note="leave it out, or pick the loss or model it applies to.")
    if spec.num_classes != split.info.num_classes:
        raise GantoolError(f"the model has {spec.num_classes} classes but the data has {split.info.num_classes}.")
    watch = _watch(req, spec, split, device) if world.is_main else None  # rank 0 measures; all check the options
    device = start(world, device)
    try:
        trainer = Trainer(spec, recipe, split, seed=seed, device=device, precision=precision, world=world)
        if init is not None:  # warm start: weights only, fresh optimizers and step count
            load_weights(trainer.g, init.get("generator"), req.model, spec.arch, "generator")
            load_weights(trainer.d, init.get("discriminator"), req.model, spec.arch, "discriminator")
            if trainer.g_ema is not None and init.get("generator_ema") is not None:
                load_weights(trainer.g_ema, init["generator_ema"], req.model, spec.arch, "EMA generator")
        result = train(trainer, req.run, resume_state=ckpt, watch=watch)
        world.barrier()
        return result
    finally:
        stop(world)


def _watch(req: TrainRequest, spec: ModelSpec, split: Split, device: str) -> TrainingWatch | None:
    """--eval-every's evaluator, its judge checked against the data before any training."""
    if req.run.eval_every is None:
        given = [o for o, v in (("--eval-samples", req.eval_samples), ("--judge", req.judge),
                                ("--keep-evals", req.keep_evals or None)) if v is not None]
        if given:
            verb = "apply" if len(given) > 1 else "applies"
            raise GantoolError(f"{' and '.join(given)} {verb} to --eval-every only: the option would change nothing.",
                               note="add --eval-every N, or leave them out.")
        return None
    from gantool.train.limits import check_eval_size
    from gantool.train.watch import TrainingWatch, WatchOptions

    opts = WatchOptions(every=req.run.eval_every, judge_path=req.judge, keep=req.keep_evals)
    if req.eval_samples is not None:
        opts.samples = check_eval_size(req.eval_samples, "--eval-samples")
    return TrainingWatch(spec, split, load_split(req.data_dir, "test"), opts, req.run.out_dir, device,
                         shown_dir(req.data_dir))


def _same_run(model: str, arch: str, checkpoint: Path) -> None:
    """--model on --resume must name the run being continued, not silently another model."""
    if model in ZOO and model != arch:
        raise GantoolError(f"--resume continues the {arch} run in {checkpoint.parent}, but --model is {model}.",
                           note=f"pass --model {arch}, or choose another -o/--output folder for a new {model} run.")
    if model not in ZOO and Path(model).exists() and not same_file(model, checkpoint):
        raise GantoolError(f"--resume continues the run in {checkpoint.parent}; --model {model} is another "
                           f"checkpoint.", note=f"pass --model {arch} or --model {checkpoint}.")

