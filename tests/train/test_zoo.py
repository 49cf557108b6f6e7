"""Every zoo model, at batch 1 and 7, with every label."""

import pytest
import torch

from gantool.spec import ZOO_NAMES
from gantool.errors import GantoolError
from gantool.train.recipe import Recipe
from gantool.train.zoo import MNIST_INFO, ZOO, build_models, build_spec, count_params, example_inputs, generator_flops

SIZES = {"gan": 28, "dcgan": 64, "cgan": 28, "cdcgan": 28, "cgan-in": 64, "cwgan": 28}


def test_cli_names_match_the_zoo():
    assert tuple(ZOO) == ZOO_NAMES


@pytest.mark.parametrize("name", list(ZOO))
@pytest.mark.parametrize("batch", [1, 7])
def test_shapes_range_and_every_label(name, batch):
    spec = build_spec(name, MNIST_INFO)
    pair = build_models(spec)
    g, d = pair.generator.eval(), pair.discriminator.eval()
    labels_sets = [torch.full((batch,), k) for k in range(10)] if spec.conditional else [None]
    z = example_inputs(spec, batch)[0]
    with torch.no_grad():
        for labels in labels_sets:
            x = g(z, labels)
            assert x.shape == (batch, 1, SIZES[name], SIZES[name])
            assert x.min() >= -1 and x.max() <= 1 and torch.isfinite(x).all()
            assert d(x, labels).shape == (batch,)


@pytest.mark.parametrize("name", [n for n in ZOO if ZOO[n].conditional])
def test_each_sample_gets_its_own_label(name):
    """Distinct labels in one batch give each sample what a batch of one gives it (cf. TensorRT#3004)."""
    spec = build_spec(name, MNIST_INFO)
    g = build_models(spec).generator.eval()
    z, labels = example_inputs(spec, 10)
    with torch.no_grad():
        batch = g(z, labels)
        singles = torch.cat([g(z[i:i + 1], labels[i:i + 1]) for i in range(10)])
        other = g(z, (labels + 1) % 10)
    torch.testing.assert_close(batch, singles, atol=1e-5, rtol=0)
    assert (batch - other).abs().amax(dim=(1, 2, 3)).min() > 1e-4  # the label changes every sample


@pytest.mark.parametrize("name", list(ZOO))
def test_generator_is_a_pure_function_of_its_inputs(name):
    spec = build_spec(name, MNIST_INFO)
    g = build_models(spec).generator.eval()
    inputs = example_inputs(spec, 4)
    with torch.no_grad():
        torch.testing.assert_close(g(*inputs), g(*inputs), atol=0, rtol=0)


def test_seed_widths_are_kept():
    g = build_models(build_spec("gan", MNIST_INFO)).generator
    assert [m.out_features for m in g.net if isinstance(m, torch.nn.Linear)] == [256, 512, 1024, 784]
    g = build_models(build_spec("dcgan", MNIST_INFO)).generator
    assert [m.out_channels for m in g.net if isinstance(m, torch.nn.ConvTranspose2d)] == [512, 256, 128, 64, 1]
    g = build_models(build_spec("cgan", MNIST_INFO)).generator
    assert [m.out_features for m in g.net if isinstance(m, torch.nn.Linear)] == [128, 256, 512, 1024, 784]
    assert g.net[0].in_features == 110
    g = build_models(build_spec("cwgan", MNIST_INFO)).generator
    assert [m.out_channels for m in g.net if isinstance(m, torch.nn.ConvTranspose2d)] == [256, 128, 64, 32, 1]
    g = build_models(build_spec("cdcgan", MNIST_INFO)).generator
    assert g.label_embedding.embedding_dim == 128 and g.initial[0].out_channels == 256
    g = build_models(build_spec("cgan-in", MNIST_INFO)).generator
    assert g.label_embedding.embedding_dim == 100
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in g.modules())


def test_cgan_image_size_64_as_in_the_seed_and_conv_models_refuse_it():
    spec = build_spec("cgan", MNIST_INFO, image_size=64)
    g = build_models(spec).generator.eval()
    assert g.net[-2].out_features == 64 * 64
    with pytest.raises(GantoolError, match="--image-size is allowed for: gan, cgan"):
        build_spec("cdcgan", MNIST_INFO, image_size=64)


def test_spectral_norm_recipe_wraps_discriminator_layers():
    spec = build_spec("cdcgan", MNIST_INFO)
    d = build_models(spec, Recipe(spectral_norm=True)).discriminator
    assert any("parametrizations" in n for n, _ in d.named_parameters())


def test_params_and_flops_are_counted():
    spec = build_spec("gan", MNIST_INFO)
    assert count_params(build_models(spec).generator) == 100 * 256 + 256 + 256 * 512 + 512 + 512 * 1024 + 1024 + 1024 * 784 + 784
    assert generator_flops(spec) == 2 * (100 * 256 + 256 * 512 + 512 * 1024 + 1024 * 784)


@pytest.mark.parametrize("name", ["cgan", "cwgan"])
def test_projection_discriminator_uses_the_label(name):
    spec = build_spec(name, MNIST_INFO)
    torch.manual_seed(0)
    d = build_models(spec, Recipe(projection=True)).discriminator.eval()
    x = torch.randn(10, *spec.image_shape)
    with torch.no_grad():
        torch.nn.init.normal_(d.label_embedding.weight)
        a, b = d(x, torch.arange(10)), d(x, (torch.arange(10) + 1) % 10)
    assert a.shape == (10,) and not torch.allclose(a, b)
    assert not any(isinstance(m, torch.nn.Embedding) and m.embedding_dim == spec.num_classes for m in d.modules())


def test_projection_is_refused_where_the_family_has_none():
    with pytest.raises(GantoolError, match="dcgan has no projection discriminator; --projection is allowed for: cgan, cwgan"):
        build_models(build_spec("dcgan", MNIST_INFO), Recipe(projection=True))


def test_seed_recipes_are_the_notebooks():
    from gantool.train.run import base_recipe

    cgan, cdcgan = base_recipe("cgan", "seed"), base_recipe("cdcgan", "seed")
    assert (cgan.batch_size, cgan.lr_g, cgan.lr_d, cgan.beta1, cgan.ema_decay, cgan.fake_labels) == (
        32, 2e-4, 2e-4, 0.5, 0.0, "uniform")
    assert (cdcgan.batch_size, cdcgan.lr_g, cdcgan.lr_d, cdcgan.beta1, cdcgan.ema_decay) == (128, 3e-4, 2e-4, 0.9, 0.0)
    with pytest.raises(GantoolError, match="the seed recipe exists for: cgan, cdcgan"):
        base_recipe("gan", "seed")
    with pytest.raises(GantoolError, match="fake labels 'x' is not one of data, uniform"):
        Recipe(fake_labels="x")
