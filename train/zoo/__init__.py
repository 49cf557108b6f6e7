"""The model zoo: every architecture of the seed notebooks, by name."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gantool.errors import GantoolError
from gantool.spec import DataInfo, ModelSpec
from gantool.train.limits import MAX_MLP_IMAGE_SIZE
from gantool.train.recipe import Recipe
from gantool.train.zoo import cdcgan, cgan, cgan_in, cwgan, dcgan, gan
from gantool.train.zoo.base import ZooEntry

ZOO: dict[str, ZooEntry] = {m.ENTRY.name: m.ENTRY for m in (gan, dcgan, cgan, cdcgan, cgan_in, cwgan)}
MNIST_INFO = DataInfo(num_classes=10, image_size=28)  # for `gantool models` and tests without data


def entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise GantoolError(f"unknown model {name!r}; allowed: {', '.join(ZOO)} or a checkpoint file path.")
    return ZOO[name]


def convolutional(name: str) -> bool:
    """Conv architectures generate one fixed size; MLPs any (what channels_last applies to)."""
    return entry(name).native_size is not None


def build_spec(name: str, data: DataInfo, image_size: int | None = None) -> ModelSpec:
    """A zoo model's spec for this data: class count and channels come from the data files."""
    e = entry(name)
    if image_size is not None and e.native_size is not None and image_size != e.native_size:
        mlps = ", ".join(n for n, z in ZOO.items() if z.native_size is None)
        raise GantoolError(f"{name} is a conv architecture that generates {e.native_size}x{e.native_size} only; "
                           f"--image-size is allowed for: {mlps}.")
    if image_size is not None and not 4 <= image_size <= MAX_MLP_IMAGE_SIZE:
        raise GantoolError(f"--image-size {image_size} is out of range; allowed: 4..{MAX_MLP_IMAGE_SIZE}.")
    size = e.native_size or image_size or data.image_size
    if size > MAX_MLP_IMAGE_SIZE:
        raise GantoolError(f"{name} would generate {size}x{size} images (the data's size); its MLP layers grow with "
                           f"the square of the side, allowed: up to {MAX_MLP_IMAGE_SIZE}.",
                           note=f"pass --image-size {MAX_MLP_IMAGE_SIZE} or less.")
    return ModelSpec(arch=name, latent_dim=e.latent_dim, num_classes=data.num_classes, conditional=e.conditional,
                     image_size=size, channels=data.channels, width=e.width, noise=e.noise, dataset=data.name)


@dataclass
class GanPair:
    generator: nn.Module
    discriminator: nn.Module


def build_models(spec: ModelSpec, recipe: Recipe | None = None) -> GanPair:
    """Build G and D for a spec; the recipe decides D's conditioning and spectral norm."""
    e = entry(spec.arch)
    if recipe is not None and recipe.projection:
        if not e.projection:
            allowed = ", ".join(n for n, z in ZOO.items() if z.projection)
            raise GantoolError(f"{spec.arch} has no projection discriminator; --projection is allowed for: {allowed}.")
        g, d = e.generator(spec), e.discriminator(spec, projection=True)
    else:
        g, d = e.generator(spec), e.discriminator(spec)
    if recipe is not None and recipe.spectral_norm:
        for m in list(d.modules()):
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                torch.nn.utils.parametrizations.spectral_norm(m)
    return GanPair(g, d)


def build_generator(spec: ModelSpec) -> nn.Module:
    return entry(spec.arch).generator(spec)


def example_inputs(spec: ModelSpec, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """(z,) or (z, labels) with every class present when batch >= num_classes."""
    from gantool.noise import make_noise

    z = torch.from_numpy(make_noise(seed, batch, spec.latent_dim, spec.noise))
    if not spec.conditional:
        return (z,)
    return z, torch.arange(batch, dtype=torch.int64) % spec.num_classes


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def generator_flops(spec: ModelSpec) -> int:
    """FLOPs of one generator sample (multiply-add = 2), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    g = build_generator(spec).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        g(*example_inputs(spec, 1))
    return int(counter.get_total_flops())
