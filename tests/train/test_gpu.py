"""Training on a CUDA GPU: skipped with a reason where torch sees none."""

import pytest

from gantool.train.checkpoint import load_checkpoint
from gantool.train.data import load_split
from gantool.train.loop import RunOptions, Trainer, train
from gantool.train.zoo import ZOO, build_spec


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["cdcgan", "cwgan"])
def test_trains_and_resumes_on_cuda(name, small_mnist, tmp_path):
    split = load_split(small_mnist)
    recipe = ZOO[name].recipe.replace(batch_size=16)

    def run(out, steps, resume=False):
        t = Trainer(build_spec(name, split.info), recipe, split, seed=0, device="cuda")
        return train(t, RunOptions(out_dir=out, max_steps=steps, ckpt_every=3, resume=resume, progress=False))

    result = run(tmp_path / "a", 6)
    assert result.steps == 6 and load_checkpoint(result.checkpoint)["rng"]["cuda"] is not None
    run(tmp_path / "b", 3)
    assert run(tmp_path / "b", 6, resume=True).steps == 6
    assert (tmp_path / "b" / "log.csv").read_text().count("\n") == 7
