"""Bad input to train, eval, judge train and models: one clear line, a non-zero exit, no traceback,
and every file that existed before is as it was (no half-written output either)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gantool.cli import main
from gantool.noise import MAX_SEED
from gantool.train.checkpoint import load_checkpoint, save_checkpoint

TINY = ["--batch-size", "16", "--max-steps", "2"]


def fails_cleanly(capsys: pytest.CaptureFixture[str], args: list[str], *fragments: str, lines: int | None = 1) -> str:
    """Run the CLI in-process; assert a non-zero exit whose last stderr line is gantool's error line."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code != 0, (out, err)
    assert "Traceback" not in out + err
    got = err.strip().splitlines()
    if lines is not None:
        assert len(got) == lines, err
    assert got[-1].startswith("gantool: error: "), err
    for f in fragments:
        assert f in got[-1], got[-1]
    return got[-1]


def snapshot(*paths: Path) -> dict[Path, tuple[bytes, int]]:
    """Every file under paths with its bytes and mtime: what a failed command must leave as it was."""
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*"))) if f.is_file()]
    return {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}


@pytest.fixture(scope="module")
def run_dir(small_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-step cgan run (checkpoint, log.csv, grid); tests copy it before they change it."""
    run = tmp_path_factory.mktemp("run") / "cgan"
    assert main(["train", "--model", "cgan", "--data-dir", str(small_mnist), "-o", str(run), *TINY]) == 0
    return run


@pytest.fixture()
def run_copy(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def edited_checkpoint(run: Path, edit) -> Path:
    """Change the run's checkpoint in place (as a corrupt or foreign file would be)."""
    path = run / "checkpoint.pt"
    ckpt = load_checkpoint(path)
    edit(ckpt)
    save_checkpoint(path, {k: v for k, v in ckpt.items() if k not in ("schema_version", "gantool_version")})
    return path


# --- 2. an output path that is one of the command's inputs -------------------------------------------------
def test_outputs_never_replace_inputs(capsys, small_mnist, run_copy, tmp_path):
    ckpt = run_copy / "checkpoint.pt"
    data = small_mnist / "train-images-idx3-ubyte.gz"
    before = snapshot(small_mnist, run_copy)
    cases = [
        (["train", "--model", "cgan", "--data-dir", small_mnist, "-o", tmp_path / "new", "--json", data, *TINY],
         ["--json", "--data-dir file train-images-idx3-ubyte.gz"]),
        (["train", "--model", ckpt, "--data-dir", small_mnist, "-o", tmp_path / "warm", "--json", ckpt, *TINY],
         ["--json", "--model"]),
        (["train", "--model", "cgan", "--data-dir", small_mnist, "-o", run_copy, "--resume", "--json", ckpt],
         ["--json", "the run's checkpoint"]),
        (["train", "--model", "cgan", "--data-dir", small_mnist, "-o", run_copy, "--resume", "--json",
          run_copy / "log.csv"], ["the run's log"]),
        (["eval", "--model", ckpt, "--data-dir", small_mnist, "-o", ckpt], ["-o", "--model", "overwrite its own input"]),
        (["eval", "--model", ckpt, "--data-dir", small_mnist, "--json", ckpt], ["--json", "--model"]),
        (["eval", "--model", ckpt, "--data-dir", small_mnist, "-o", tmp_path / "a", "--json", tmp_path / "a"],
         ["-o and --json name the same file"]),
        (["judge", "train", "--data-dir", small_mnist, "-o", data], ["-o", "--data-dir file"]),
        (["judge", "train", "--data-dir", small_mnist, "-o", tmp_path / "j.safetensors", "--json",
          small_mnist / "t10k-labels-idx1-ubyte.gz"], ["--json", "t10k-labels-idx1-ubyte.gz"]),
    ]
    for args, fragments in cases:
        fails_cleanly(capsys, args, *fragments)
    assert snapshot(small_mnist, run_copy) == before
    assert not (tmp_path / "new").exists() and not (tmp_path / "warm").exists() and not (tmp_path / "a").exists()


# --- 3. checkpoints and weights ---------------------------------------------------------------------------
def test_a_spec_field_of_the_wrong_type_is_one_line_on_every_path(capsys, small_mnist, run_copy, tmp_path):
    ckpt = edited_checkpoint(run_copy, lambda c: c["spec"].update(latent_dim="100"))
    before = snapshot(run_copy)
    for args in (["eval", "--model", ckpt, "--data-dir", small_mnist, "-o", tmp_path / "g.png"],
                 ["train", "--model", ckpt, "--data-dir", small_mnist, "-o", tmp_path / "warm", *TINY],
                 ["train", "--model", "cgan", "--data-dir", small_mnist, "-o", run_copy, "--resume"]):
        fails_cleanly(capsys, args, str(ckpt), "latent_dim must be an integer", "'100'")
    assert snapshot(run_copy) == before and not (tmp_path / "warm").exists() and not (tmp_path / "g.png").exists()
    edited_checkpoint(run_copy, lambda c: (c["spec"].update(latent_dim=100), c["recipe"].update(batch_size="16")))
    fails_cleanly(capsys, ["train", "--model", ckpt, "--data-dir", small_mnist, "-o", tmp_path / "warm"],
                  "batch_size must be of type int")


@pytest.mark.parametrize("edit, fragment", [
    (lambda c: c.pop("generator"), "holds no generator weights"),
    (lambda c: c["discriminator"].pop(next(iter(c["discriminator"]))), "discriminator weights do not fit"),
    (lambda c: c["generator"].update({k: v[:1] for k, v in c["generator"].items() if v.ndim}),
     "generator weights do not fit a cgan generator"),
])
def test_a_warm_start_from_a_checkpoint_that_does_not_fit(capsys, small_mnist, run_copy, tmp_path, edit, fragment):
    ckpt = edited_checkpoint(run_copy, edit)
    fails_cleanly(capsys, ["train", "--model", ckpt, "--data-dir", small_mnist, "-o", tmp_path / "warm", *TINY],
                  str(ckpt), fragment)
    assert not (tmp_path / "warm").exists()


def test_a_resume_with_a_corrupt_rng_state_leaves_the_run_as_it_was(capsys, small_mnist, run_copy):
    edited_checkpoint(run_copy, lambda c: c["rng"].update(torch=torch.zeros(7, dtype=torch.uint8)))
    (run_copy / ".checkpoint.pt.x.tmp").write_bytes(b"left by a killed writer")
    before = snapshot(run_copy)
    fails_cleanly(capsys, ["train", "--model", "cgan", "--data-dir", small_mnist, "-o", run_copy, "--resume",
                           "--max-steps", "4"], "RNG state is corrupt", "checkpoint.pt")
    assert snapshot(run_copy) == before


def test_integer_and_non_finite_weights_are_refused(capsys, small_mnist, run_copy, tmp_path):
    from safetensors.torch import save_file

    from gantool.contract import SPEC_KEY

    ckpt = load_checkpoint(run_copy / "checkpoint.pt")
    meta = {SPEC_KEY: json.dumps(ckpt["spec"])}
    as_int = tmp_path / "int.safetensors"
    save_file({k: v.to(torch.int16) for k, v in ckpt["generator_ema"].items()}, str(as_int), metadata=meta)
    fails_cleanly(capsys, ["eval", "--model", as_int, "--data-dir", small_mnist, "-o", tmp_path / "g.png"],
                  "is int16; weights must be floating point")
    fails_cleanly(capsys, ["export", "--model", as_int, "-o", tmp_path / "g.onnx"], "must be floating point")

    def poison(c):
        for part in ("generator", "generator_ema"):
            c[part][next(k for k, v in c[part].items() if v.is_floating_point())].view(-1)[3] = float("nan")

    edited = edited_checkpoint(run_copy, poison)
    fails_cleanly(capsys, ["eval", "--model", edited, "--data-dir", small_mnist, "-o", tmp_path / "g.png"],
                  "holds NaN or infinite values; weights must be finite")
    assert not list(tmp_path.glob("g.*"))


# --- 4. data ----------------------------------------------------------------------------------------------
def idx_dataset(folder: Path, write_idx, images: np.ndarray, labels: np.ndarray, test: bool = False) -> Path:
    folder.mkdir(exist_ok=True)
    for prefix in ("train", "t10k") if test else ("train",):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))
    return folder


def test_bad_datasets_are_one_line(capsys, tmp_path, write_idx):
    labels = np.arange(40) % 10
    corrupt = idx_dataset(tmp_path / "corrupt", write_idx, np.zeros((40, 8, 8), np.uint8), labels)
    gz = (corrupt / "train-images-idx3-ubyte.gz").read_bytes()
    (corrupt / "train-images-idx3-ubyte.gz").write_bytes(gz[:10] + b"\xff" * (len(gz) - 10))  # bad deflate stream
    flat = idx_dataset(tmp_path / "flat", write_idx, np.zeros((40, 0, 0), np.uint8), labels)
    empty = idx_dataset(tmp_path / "empty", write_idx, np.zeros((0, 28, 28), np.uint8), labels[:0])
    for data, fragments in ((corrupt, ["train-images-idx3-ubyte.gz", "cannot be read as gzip", "invalid block type"]),
                            (flat, ["images are 0x0", "at least 1x1"]),
                            (empty, ["holds no images"])):
        before = snapshot(data)
        fails_cleanly(capsys, ["train", "--model", "gan", "--data-dir", data, "-o", tmp_path / "run", *TINY],
                      *fragments)
        assert snapshot(data) == before and not (tmp_path / "run").exists()


def test_eval_refuses_data_of_another_size_than_the_judges(capsys, tmp_path, write_idx):
    data = idx_dataset(tmp_path / "d32", write_idx, np.zeros((40, 32, 32), np.uint8), np.arange(40) % 10, test=True)
    fails_cleanly(capsys, ["eval", "--model", "cgan", "--data-dir", data, "-o", tmp_path / "g.png"],
                  "holds 32x32 images", "the judge compares 28x28")
    assert not (tmp_path / "g.png").exists()


def test_judge_train_refuses_fewer_images_than_one_batch(capsys, tmp_path, write_idx):
    data = idx_dataset(tmp_path / "few", write_idx, np.zeros((100, 28, 28), np.uint8), np.arange(100) % 10, test=True)
    fails_cleanly(capsys, ["judge", "train", "--data-dir", data, "-o", tmp_path / "j.safetensors"],
                  "holds 100 images, fewer than one batch", "128")
    assert not (tmp_path / "j.safetensors").exists()


def test_a_failed_download_is_one_line(capsys, tmp_path, monkeypatch):
    import torchvision.datasets

    from gantool.train import data

    class Offline:
        def __init__(self, *a, **k):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://a, got:\n"
                               "<urlopen error [Errno -3] Temporary failure in name resolution>\n")

    monkeypatch.delenv("GANTOOL_DATA", raising=False)
    monkeypatch.setattr(data, "DEFAULT_CACHE", tmp_path / "cache")
    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    fails_cleanly(capsys, ["train", "--model", "gan", "-o", tmp_path / "run"],
                  "torchvision download failed", "Tried https://a, got: <urlopen error", "pass --data-dir")


# --- 5, 6. sizes and seeds, refused before any work ----------------------------------------------------------
def test_sizes_and_seeds_out_of_range_are_refused_up_front(capsys, small_mnist, tmp_path):
    run = tmp_path / "run"
    cases = [
        (["eval", "--model", "cgan", "--n", 10**12], ["--n", "100<=x<=100000"]),
        (["train", "--model", "gan", "--data-dir", small_mnist, "-o", run, "--image-size", 10**5], ["--image-size"]),
        (["train", "--model", "gan", "--data-dir", small_mnist, "-o", run, "--seed", -5, *TINY],
         ["--seed", "-5", f"0<=x<={MAX_SEED}"]),
        (["train", "--model", "gan", "--data-dir", small_mnist, "-o", run, "--seed", MAX_SEED + 1], ["--seed"]),
        (["eval", "--model", "cgan", "--data-dir", small_mnist, "--seed", -1], ["--seed", f"0<=x<={MAX_SEED}"]),
        (["judge", "train", "--data-dir", small_mnist, "-o", tmp_path / "j", "--seed", 2**40], ["--seed"]),
    ]
    for args, fragments in cases:
        fails_cleanly(capsys, args, *fragments)
    assert not list(tmp_path.iterdir())
    from gantool.errors import GantoolError
    from gantool.train.limits import check_eval_size, check_seed

    with pytest.raises(GantoolError, match="allowed: 100..100000"):
        check_eval_size(10**12)
    with pytest.raises(GantoolError, match=f"allowed: an integer in 0..{MAX_SEED}"):
        check_seed(-5)


def test_the_largest_seed_trains(capsys, small_mnist, tmp_path):
    assert main(["train", "--model", "gan", "--data-dir", str(small_mnist), "-o", str(tmp_path / "r"),
                 "--seed", str(MAX_SEED), *TINY]) == 0, capsys.readouterr().err
    assert load_checkpoint(tmp_path / "r" / "checkpoint.pt")["seed"] == MAX_SEED


# --- 7. eval --device and help text ---------------------------------------------------------------------
def test_eval_has_device_and_every_option_has_help(capsys):
    import click

    from gantool.cli.app import cli

    for path in (["train"], ["eval"], ["models"], ["judge", "train"]):
        cmd: click.Command = cli
        for name in path:
            cmd = cmd.commands[name]  # type: ignore[attr-defined]
        for p in cmd.params:
            assert isinstance(p, click.Option) and p.help, f"{' '.join(path)} {p.name} has no help"
    eval_cmd = cli.commands["eval"]
    device = next(p for p in eval_cmd.params if p.name == "device")
    assert list(device.type.choices) == ["auto", "cpu", "cuda"]
    assert main(["eval", "--help"]) == 0
    assert "once weights ship" not in capsys.readouterr().out
    if not torch.cuda.is_available():
        fails_cleanly(capsys, ["eval", "--model", "cgan", "--device", "cuda"], "no CUDA GPU")


# --- 8. models without torch --------------------------------------------------------------------------
def test_models_lists_what_it_can_without_torch(capsys, tmp_path, monkeypatch):
    assert main(["models", "--json", str(tmp_path / "full.json")]) == 0
    full = {r["name"]: r for r in json.loads((tmp_path / "full.json").read_text())}
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    assert main(["models", "--json", str(tmp_path / "bare.json")]) == 0
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "need the train extra" in err and "D params" in err
    bare = {r["name"]: r for r in json.loads((tmp_path / "bare.json").read_text())}
    assert list(bare) == list(full)
    from gantool.paths import WEIGHTS_DIR

    for name, row in bare.items():
        assert f"\n{name} " in out
        if (WEIGHTS_DIR / f"{name}.safetensors").is_file():
            for key in ("g_params", "conditional", "image", "latent"):
                assert row[key] == full[name][key], (name, key)
        assert row["d_params"] is None and row["loss"] is None


def test_a_spec_of_wrong_type_in_a_shipped_file_is_one_line(capsys, tmp_path):
    from gantool.contract import SPEC_KEY
    from gantool.paths import WEIGHTS_DIR
    from gantool.train.header import LEGACY_SPEC_KEY

    raw = (WEIGHTS_DIR / "gan.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = header["__metadata__"]  # files re-shipped since 0.2 use SPEC_KEY, older ones gantool 0.1's key
    spec = json.loads(meta.pop(SPEC_KEY) if SPEC_KEY in meta else meta.pop(LEGACY_SPEC_KEY))
    meta[SPEC_KEY] = json.dumps({**spec, "conditional": "no"})
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    bad = tmp_path / "gan.safetensors"
    bad.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n:])
    fails_cleanly(capsys, ["eval", "--model", bad, "-o", tmp_path / "g.png"], "conditional must be true or false")
