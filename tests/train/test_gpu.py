"""Training on a CUDA GPU: skipped with a reason where torch sees none."""

import pytest

from gantool.train.checkpoint import load_checkpoint
from gantool.train.data import load_split
from gantool.train.loop import RunOptions, Trainer, train
from gantool.train.precision import choose_precision
from gantool.train.zoo import ZOO, build_spec, convolutional


@pytest.mark.gpu
@pytest.mark.parametrize("name, precision", [("cdcgan", "fp32"), ("cwgan", "fp32"), ("cdcgan", "bf16"),
                                             ("cwgan", "bf16")])
def test_trains_and_resumes_on_cuda(name, precision, small_mnist, tmp_path):
    split = load_split(small_mnist)
    recipe = ZOO[name].recipe.replace(batch_size=16)
    chosen = choose_precision(precision, "cuda", convolutional(name))

    def run(out, steps, resume=False):
        t = Trainer(build_spec(name, split.info), recipe, split, seed=0, device="cuda", precision=chosen)
        return train(t, RunOptions(out_dir=out, max_steps=steps, ckpt_every=3, resume=resume, progress=False))

    result = run(tmp_path / "a", 6)
    assert result.steps == 6 and load_checkpoint(result.checkpoint)["rng"]["cuda"] is not None
    run(tmp_path / "b", 3)
    assert run(tmp_path / "b", 6, resume=True).steps == 6
    assert (tmp_path / "b" / "log.csv").read_text().count("\n") == 7
