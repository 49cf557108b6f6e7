"""Training precision: what auto picks on which CPU, what stays fp32 under bf16, and that the run's own
precision is kept on --resume (in one line where auto would now choose otherwise)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from gantool.cli import main
from gantool.cpu import CpuInfo, cpu_info
from gantool.errors import CheckpointError, GantoolError
from gantool.train import precision as precision_mod
from gantool.train.checkpoint import load_checkpoint
from gantool.train.data import load_split
from gantool.train.loop import RunOptions, Trainer, train
from gantool.train.precision import TrainPrecision, choose_precision
from gantool.train.zoo import ZOO, build_spec

AMX = CpuInfo("Intel Xeon", frozenset({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}), 2)
EPYC = CpuInfo("AMD EPYC", frozenset({"avx512f", "avx512_bf16"}), 2)
OLD = CpuInfo("old x86", frozenset({"avx2", "fma"}), 2)


def on_cpu(monkeypatch: pytest.MonkeyPatch, cpu: CpuInfo) -> None:
    monkeypatch.setattr(precision_mod, "cpu_info", lambda: cpu)


@pytest.mark.parametrize("cpu, conv, expected", [
    (AMX, True, ("bf16", True, "AMX-BF16")), (AMX, False, ("bf16", False, "AMX-BF16")),
    (EPYC, True, ("bf16", True, "AVX512-BF16")), (OLD, True, ("fp32", False, "no bf16 units")),
])
def test_auto_picks_bf16_only_where_the_cpu_has_bf16_units(monkeypatch, cpu, conv, expected):
    on_cpu(monkeypatch, cpu)
    p = choose_precision("auto", "cpu", conv)
    assert (p.name, p.channels_last) == expected[:2] and expected[2] in p.reason and cpu.model in p.reason
    assert choose_precision("fp32", "cpu", conv).name == "fp32"  # asked for: obeyed on every CPU
    forced = choose_precision("bf16", "cpu", conv)
    assert forced.name == "bf16" and ("emulated" in forced.reason) == (cpu is OLD)


def test_cpu_facts_come_from_proc_cpuinfo():
    cpu = cpu_info()
    assert cpu.model and cpu.cpus >= 1
    assert AMX.bf16_units == "amx" and EPYC.bf16_units == "avx512" and OLD.bf16_units is None
    assert AMX.notable_flags == ["avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]  # a fixed order
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split(":")[1].split())
        assert set(cpu.notable_flags) <= flags and ("avx512_bf16" in flags) == ("avx512_bf16" in cpu.flags)


def test_precision_records_are_checked():
    assert TrainPrecision.from_dict(None).name == "fp32"  # checkpoints from before precision was recorded
    p = TrainPrecision("bf16", True, "why", "auto")
    assert TrainPrecision.from_dict(p.to_dict()) == p
    for bad in ({"name": "fp8", "channels_last": False, "reason": "", "requested": "auto"}, "bf16",
                {"name": "bf16", "channels_last": 1, "reason": "", "requested": "auto"}):
        with pytest.raises(CheckpointError, match="malformed"):
            TrainPrecision.from_dict(bad)
    with pytest.raises(GantoolError, match="allowed: auto, fp32, bf16"):
        choose_precision("fp16", "cpu", True)


def test_bf16_runs_the_matrix_products_in_bf16_and_keeps_everything_that_accumulates_in_fp32(small_mnist, tmp_path):
    split = load_split(small_mnist)
    t = Trainer(build_spec("cdcgan", split.info), ZOO["cdcgan"].recipe.replace(batch_size=16), split, seed=0,
                precision=choose_precision("bf16", "cpu", True))
    seen: set[torch.dtype] = set()
    conv = next(m for m in t.g.modules() if isinstance(m, torch.nn.ConvTranspose2d))
    conv.register_forward_hook(lambda m, i, o: seen.add(o.dtype))
    result = train(t, RunOptions(out_dir=tmp_path / "run", max_steps=3, progress=False))
    assert seen == {torch.bfloat16}  # autocast engaged
    assert all(torch.isfinite(torch.tensor(v)) for v in result.last.values())
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # NHWC weights, as oneDNN's bf16 kernels want
    ckpt = load_checkpoint(result.checkpoint)
    for part in ("generator", "discriminator", "generator_ema"):
        floats = [v for v in ckpt[part].values() if v.is_floating_point()]
        assert floats and all(v.dtype == torch.float32 for v in floats), part  # weights and BN statistics
    moments = [v for s in ckpt["opt_g"]["state"].values() for k, v in s.items() if k != "step"]
    assert moments and all(v.dtype == torch.float32 for v in moments)  # Adam's state
    assert ckpt["precision"]["name"] == "bf16" and ckpt["machine"]["cpu_model"] == cpu_info().model
    assert 0 < result.timing["step_share"] <= 1 and 0 <= result.timing["data_share_of_step"] < 1
    fp32 = Trainer(build_spec("cdcgan", split.info), ZOO["cdcgan"].recipe.replace(batch_size=16), split, seed=0)
    with pytest.raises(CheckpointError, match="trained in bf16 channels_last, but this Trainer runs fp32"):
        fp32.load_state_dict(ckpt)


def precision_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("precision:")]
    assert len(lines) == 1, err  # printed once
    return lines[0]


def test_resume_keeps_the_runs_precision_and_refuses_another(monkeypatch, capsys, small_mnist, tmp_path):
    def train_cli(run, *extra):
        return main(["train", "--model", "cgan", "--data-dir", str(small_mnist), "-o", str(run), "--batch-size", "16",
                     *extra])

    on_cpu(monkeypatch, EPYC)
    chosen, auto = tmp_path / "chosen", tmp_path / "auto"
    assert train_cli(chosen, "--precision", "bf16", "--max-steps", "2") == 0
    assert train_cli(auto, "--max-steps", "2") == 0
    capsys.readouterr()
    on_cpu(monkeypatch, OLD)  # both runs move to a machine where auto would pick fp32

    assert train_cli(chosen, "--resume", "--max-steps", "3", "--json", str(tmp_path / "r.json")) == 0
    line = precision_line(capsys.readouterr().err)
    assert line.startswith("precision: bf16, the run's own, kept on --resume (first chosen: asked for with "
                           "--precision bf16"), line
    assert "auto would choose" not in line  # the user chose bf16: nothing to point out
    assert json.loads((tmp_path / "r.json").read_text())["precision"]["name"] == "bf16"

    assert train_cli(auto, "--resume", "--precision", "auto", "--max-steps", "3") == 0
    line = precision_line(capsys.readouterr().err)
    assert line.startswith("precision: bf16, the run's own, kept on --resume (first chosen: auto: this CPU "
                           "(AMD EPYC) has AVX512-BF16 units)"), line
    assert line.endswith("; auto would choose fp32 here (this CPU (old x86) has no bf16 units)"), line
    assert load_checkpoint(auto / "checkpoint.pt")["precision"]["name"] == "bf16"

    assert train_cli(chosen, "--resume", "--precision", "fp32", "--max-steps", "4") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--precision" in err[0] and "Traceback" not in err[0]
