"""From CLI options to a finished run: resolve data, spec and recipe, then call the loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantool.errors import GantoolError
from gantool.train.checkpoint import load_checkpoint, run_checkpoint, spec_and_recipe
from gantool.train.data import load_split
from gantool.train.loop import RunOptions, Trainer, TrainResult, resolve_device, train
from gantool.train.recipe import Recipe
from gantool.train.zoo import ZOO, build_spec, entry


@dataclass
class TrainRequest:
    model: str  # zoo name or checkpoint path
    out_dir: Path
    data_dir: str | None = None
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    image_size: int | None = None
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    max_steps: int | None = None
    max_minutes: float | None = None
    ckpt_every: int = 500
    progress: bool | None = None
    base_recipe: str = "gantool"  # or "seed": the seed notebook's recipe, for like-for-like comparisons


def _overrides(o: dict[str, Any]) -> dict[str, Any]:
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


def run_training(req: TrainRequest) -> TrainResult:
    overrides = _overrides(req.recipe_overrides)
    device = resolve_device(req.device)
    if not (req.resume or req.model in ZOO or Path(req.model).is_file()):
        raise GantoolError(f"--model {req.model!r} is neither a zoo model nor a file; "
                           f"allowed: {', '.join(ZOO)} or a checkpoint path.")
    split = load_split(req.data_dir, "train")
    init = ckpt = None
    if req.resume:
        ckpt = load_checkpoint(run_checkpoint(req.out_dir))
        spec, saved = spec_and_recipe(ckpt)
        recipe = saved.replace(**overrides)
        changed = [k for k in overrides if k != "epochs" and getattr(recipe, k) != getattr(saved, k)]
        if req.image_size is not None and req.image_size != spec.image_size:
            changed.append("image_size")
        if changed:
            raise GantoolError(f"--resume continues a run with its saved recipe; these options differ from it: "
                               f"{', '.join(changed)}.", note="only --epochs and --max-steps may change on --resume.")
        seed = int(ckpt["seed"])
    elif req.model in ZOO:
        spec = build_spec(req.model, split.info, req.image_size)
        recipe = base_recipe(req.model, req.base_recipe).replace(**overrides)
        seed = req.seed
    else:
        init = load_checkpoint(req.model)
        spec, recipe = spec_and_recipe(init)
        recipe = recipe.replace(**overrides)
        seed = req.seed
        if req.image_size is not None and req.image_size != spec.image_size:
            raise GantoolError(f"--image-size {req.image_size} differs from the checkpoint's {spec.image_size}; "
                               f"a warm start keeps the checkpoint's architecture.")
    if spec.num_classes != split.info.num_classes:
        raise GantoolError(f"the model has {spec.num_classes} classes but the data has {split.info.num_classes}.")
    trainer = Trainer(spec, recipe, split, seed=seed, device=device)
    if init is not None:  # warm start: weights only, fresh optimizers and step count
        trainer.g.load_state_dict(init["generator"])
        trainer.d.load_state_dict(init["discriminator"])
        if trainer.g_ema is not None and init.get("generator_ema") is not None:
            trainer.g_ema.load_state_dict(init["generator_ema"])
    opts = RunOptions(out_dir=req.out_dir, seed=seed, device=device, max_steps=req.max_steps, max_minutes=req.max_minutes,
                      ckpt_every=req.ckpt_every, resume=req.resume, progress=req.progress)
    return train(trainer, opts, resume_state=ckpt)
