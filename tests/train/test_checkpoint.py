
import pytest
import torch

from gantool.errors import CheckpointError
from gantool.train.checkpoint import load_checkpoint, load_generator, save_checkpoint
from gantool.train.zoo import MNIST_INFO, build_models, build_spec, example_inputs


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_rebuilds_its_generator_with_no_other_input(tmp_path):
    spec = build_spec("cdcgan", MNIST_INFO)
    g = build_models(spec).generator.eval()
    from gantool.train.recipe import Recipe

    save_checkpoint(tmp_path / "c.pt", {"spec": spec.to_dict(), "recipe": Recipe().to_dict(),
                                        "generator": g.state_dict(), "generator_ema": None})
    spec2, g2 = load_generator(tmp_path / "c.pt")
    assert spec2 == spec
    x = example_inputs(spec, 3)
    with torch.no_grad():
        torch.testing.assert_close(g2(*x), g(*x), atol=0, rtol=0)


def test_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"schema_version": 1, "spec": Evil()}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_checkpoint(path)
    assert "pwned" not in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable gantool checkpoint"),
    (b"garbage" * 10, "not a readable gantool checkpoint"),
])
def test_corrupt_files_are_one_clear_error(tmp_path, content, message):
    path = tmp_path / "c.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_truncated_checkpoint_and_foreign_dicts(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"spec": {}, "x": torch.zeros(1000)})
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a gantool checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
