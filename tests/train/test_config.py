"""One training config: recipe options made from the Recipe's fields, seed and device set once and
recorded in the checkpoint, and no option that silently does nothing."""

from __future__ import annotations

import dataclasses

import click
import pytest

from gantool.cli import main
from gantool.errors import GantoolError
from gantool.train.checkpoint import load_checkpoint
from gantool.train.loop import RunOptions
from gantool.train.recipe import Recipe
from gantool.train.run import TrainRequest

TINY = ["--batch-size", "16", "--max-steps", "2"]


def last_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("gantool: error: "), err
    return line


def test_the_train_command_has_one_option_per_recipe_field():
    from gantool.cli.app import cli

    options = {p.name: p for p in cli.commands["train"].params}
    shown = [f for f in dataclasses.fields(Recipe) if f.metadata["cli"]]
    assert {f.name for f in dataclasses.fields(Recipe)} - {f.name for f in shown} == {"schema_version"}
    for f in shown:
        opt = options[f.name]
        assert isinstance(opt, click.Option) and opt.default is None
        assert f.metadata["help"] in opt.help
        flag = "--" + f.name.replace("_", "-")
        assert flag in opt.opts, (f.name, opt.opts)
        if f.type == "bool":
            assert opt.secondary_opts == ["--no-" + flag[2:]]
    assert list(options["loss"].type.choices) == ["bce", "lsgan", "hinge", "wgan-gp"]
    assert "lr" in options  # sets both rates


def test_recipe_replace_keeps_what_it_is_given():
    assert Recipe().replace(lr_g=1e-3).lr_g == 1e-3
    with pytest.raises(GantoolError, match="lr_g must be of type float, got None"):
        Recipe().replace(lr_g=None)  # a plain dataclasses.replace: None is not "unchanged"


def test_seed_and_device_live_in_one_place():
    assert {"seed", "device"}.isdisjoint(f.name for f in dataclasses.fields(RunOptions))
    assert {"seed", "device"} <= {f.name for f in dataclasses.fields(TrainRequest)}


def test_seed_device_and_data_size_reach_the_checkpoint_and_resume_keeps_them(capsys, small_mnist, tmp_path):
    run = tmp_path / "run"
    base = ["train", "--model", "gan", "--data-dir", str(small_mnist), "-o", str(run)]
    assert main([*base, *TINY, "--seed", "7", "--device", "cpu", "--beta1", "0.3", "--lr", "1e-3"]) == 0
    out, err = capsys.readouterr()
    assert "step 2/2" in err and "step 2/2" not in out  # progress is a log line on stderr, not print()
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert (ckpt["seed"], ckpt["device"], ckpt["data"]["images"]) == (7, "cpu", 4096)
    assert (ckpt["recipe"]["beta1"], ckpt["recipe"]["lr_g"], ckpt["recipe"]["lr_d"]) == (0.3, 1e-3, 1e-3)
    before = (run / "checkpoint.pt").read_bytes()
    for extra, fragment in ((["--seed", "8"], "these options differ from it: --seed"),
                            (["--beta1", "0.5"], "--beta1"),
                            (["--model", "cgan"], "continues the gan run")):
        assert main([*base, "--batch-size", "16", "--max-steps", "3", "--resume", *extra]) == 1
        assert fragment in last_error(capsys)
    assert (run / "checkpoint.pt").read_bytes() == before
    assert main([*base, "--max-steps", "3", "--resume"]) == 0, capsys.readouterr().err
    assert load_checkpoint(run / "checkpoint.pt")["seed"] == 7


@pytest.mark.parametrize("args, fragment", [
    (["--gp-weight", "5"], "--gp-weight applies to --loss wgan-gp only, not bce"),
    (["--loss", "hinge", "--label-smoothing", "0.1"], "--label-smoothing applies to --loss bce or lsgan only"),
    (["--fake-labels", "uniform"], "--fake-labels uniform applies to conditional models only"),
])
def test_an_option_that_would_change_nothing_is_refused(capsys, small_mnist, tmp_path, args, fragment):
    code = main(["train", "--model", "gan", "--data-dir", str(small_mnist), "-o", str(tmp_path / "r"), *TINY, *args])
    assert code == 1 and fragment in last_error(capsys)
    assert not (tmp_path / "r").exists()
