"""`gantool export` and `gantool build`: ONNX files, Triton repositories, TensorRT engines."""

from __future__ import annotations

import click

from gantool.cli.app import SEED, cli, need_torch, write_json
from gantool.contract import TOLERANCES
from gantool.errors import GantoolError
from gantool.fileio import refuse_overwrite
from gantool.spec import ZOO_NAMES


@cli.command("export")
@click.option("--model", required=True, metavar="NAME|CHECKPOINT",
              help=f"zoo name ({', '.join(ZOO_NAMES)}: shipped weights), a training checkpoint (.pt) or a shipped "
                   f"generator (.safetensors)")
@click.option("--format", "fmt", type=click.Choice(["onnx", "triton", "web", "ort"]), default="onnx", show_default=True,
              help="a single ONNX file; a Triton model repository folder; web: a folder with a browser sampling page "
                   "(onnxruntime-web, docs/web.md); ort: ORT-format models and required_operators.config for ONNX "
                   "Runtime Mobile (docs/mobile.md)")
@click.option("--precision", type=click.Choice(list(TOLERANCES)), default=None,
              help="what the graph computes in (docs/precision.md); each has its own parity bound [default: fp32; "
                   "--format ort: fp32, fp16 and int8]")
@click.option("--opset", type=click.IntRange(17, 23), default=18, show_default=True, help="ONNX opset")
@click.option("-o", "--output", type=click.Path(), default=None,
              help="file, or a folder (existing, or with a trailing /) to write NAME.onnx into "
                   "[default: ./NAME.onnx, ./NAME.fp16.onnx, ./NAME.int8.onnx; triton: ./model_repository; web: ./site; "
                   "ort: ./mobile]")
@click.option("--to-cache", is_flag=True,
              help="write a zoo model's fp32 export into the runtime's cache, where Generator.load(NAME) and "
                   "gantool sample find it (the 64x64 models dcgan and cgan-in do not ship as ONNX)")
@click.option("--max-batch", type=click.IntRange(min=1), default=None,
              help="triton: max_batch_size, at most a --plan's profile maximum [default: 256, or the plan's maximum "
                   "when smaller]")
@click.option("--plan", type=click.Path(dir_okay=False), default=None, help="triton: serve this built engine")
@click.option("--samples", type=click.IntRange(100, 100000), default=None,
              help="fp16/int8 and --variants: samples for the judge checks [default: 2000]")
@click.option("--lower/--no-lower", default=True, show_default=True,
              help="rewrite ConvTranspose into exact Gemm / phase-Conv equivalents, faster on ONNX Runtime's CPU")
@click.option("--variants", is_flag=True,
              help="write the family the runtime chooses among on a CPU into the -o folder: NAME.onnx (lowered "
                   "fp32, also judged in bf16 on OpenVINO), NAME.plain.onnx, NAME.interleaved.onnx, "
                   "NAME.phases.onnx, NAME.int8.onnx (s8 activations, TensorRT's form), NAME.int8u.onnx (u8 "
                   "activations, ONNX Runtime's fast x86 form) (docs/runtime.md)")
@click.option("--mix", is_flag=True,
              help="write the class-weight graph NAME.mix.onnx instead (conditional models, fp32): it takes "
                   "(batch, classes) weights in the label's place, for class interpolation; --variants includes it")
@click.option("--seed", type=SEED, default=0, show_default=True, help="seed of the validation inputs")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="the validation report")
def export_cmd(model: str, fmt: str, precision: str | None, opset: int, output: str | None, to_cache: bool,
               max_batch: int | None, plan: str | None, samples: int | None, lower: bool, variants: bool, mix: bool,
               seed: int, json_path: str | None) -> None:
    """Export a generator to ONNX (dynamic batch and labels) and validate it against PyTorch."""
    need_torch("export")
    refuse_overwrite({"--json": json_path}, {"--model": model, "-o": output, "--plan": plan})
    if fmt != "triton" and (plan is not None or max_batch is not None):
        raise GantoolError("--plan and --max-batch are Triton options; allowed only with --format triton.")
    if mix and (variants or fmt != "onnx"):
        raise GantoolError(f"--mix writes one ONNX file (--format onnx); "
                           f"{'--variants' if variants else '--format ' + fmt} writes a conditional model's "
                           f"class-weight graph by itself.")
    if fmt in ("web", "ort"):
        _export_folder(model, fmt, precision, opset, lower, output, to_cache, variants, samples, seed, json_path)
        return
    precision = precision or "fp32"
    if variants:
        _export_variants(model, fmt, precision, opset, lower, output, to_cache, samples, seed, json_path)
        return
    if samples is not None and precision == "fp32":
        raise GantoolError("--samples sets the judge checks of fp16, int8 and --variants exports; fp32 has none.")
    if to_cache:
        if fmt != "onnx" or output is not None or precision != "fp32" or not lower or model not in ZOO_NAMES:
            raise GantoolError("--to-cache takes a zoo name and writes its fp32 lowered graph; it cannot be combined "
                               "with -o, --format triton, --precision or --no-lower.")
        from gantool.paths import cached_onnx

        from gantool.runtime.variants import MIX_TAG, variant_name

        base = cached_onnx(model)
        output = str(base if not mix else base.with_name(variant_name(base.stem, MIX_TAG)))
    if fmt == "triton":
        from gantool.export.run import run_triton_export

        result = run_triton_export(model, output or "model_repository", precision, opset, max_batch, plan,
                                   semantic_samples=samples, lower=lower, seed=seed)
        click.echo(result.text())
        click.echo(f"wrote Triton model {result.path}" + "".join(f" and {c.path}" for c in result.companions))
    else:
        from gantool.export.run import run_export

        from gantool.contract import CLASS_WEIGHTS, LABELS

        result = run_export(model, output, precision=precision, opset=opset, semantic_samples=samples, lower=lower,
                            seed=seed, condition=CLASS_WEIGHTS if mix else LABELS)
        click.echo(result.text())
        click.echo(f"wrote {result.path} ({result.precision}, {result.metadata.graph} graph, "
                   f"{result.path.stat().st_size / 2 ** 20:.2f} MiB)")
    write_json(json_path, result.to_dict())


def _export_folder(model: str, fmt: str, precision: str | None, opset: int, lower: bool, output: str | None,
                   to_cache: bool, variants: bool, samples: int | None, seed: int, json_path: str | None) -> None:
    """--format web (a browser page) or ort (ORT Mobile): each writes a folder of its own."""
    from typing import Any

    if to_cache or variants:
        raise GantoolError(f"--format {fmt} writes a folder of its own; it cannot be combined with --to-cache or "
                           f"--variants.")
    result: Any
    if fmt == "web":
        from gantool.export.browser import run_web_export

        if samples is not None:
            raise GantoolError("--samples sets the judge checks of fp16, int8 and --variants exports; --format web "
                               "writes fp32 only.")
        result = run_web_export(model, output, precision or "fp32", opset, lower, seed)
    else:
        from gantool.export.mobile import run_ort_export
        from gantool.export.precision import EXPORT_PRECISIONS

        result = run_ort_export(model, output, (precision,) if precision else EXPORT_PRECISIONS, opset, samples,
                                lower, seed, required=precision is not None)
    click.echo(result.text())
    write_json(json_path, result.to_dict())


def _export_variants(model: str, fmt: str, precision: str, opset: int, lower: bool, output: str | None,
                     to_cache: bool, samples: int | None, seed: int, json_path: str | None) -> None:
    from pathlib import Path

    from gantool.export.variants import run_variants

    if fmt != "onnx" or precision != "fp32" or not lower:
        raise GantoolError("--variants writes every precision and graph form itself; it cannot be combined with "
                           "--format triton, --precision or --no-lower.")
    stem = None
    if to_cache:
        if output is not None or model not in ZOO_NAMES:
            raise GantoolError("--to-cache takes a zoo name and chooses the folder itself; it cannot be combined "
                               "with -o.")
        from gantool.paths import cached_onnx

        output, stem = str(cached_onnx(model).parent), cached_onnx(model).stem
    elif output is not None and Path(output).suffix == ".onnx":
        raise GantoolError(f"-o {output}: --variants writes several files; allowed: a folder.")
    result = run_variants(model, output, opset=opset, semantic_samples=samples, seed=seed, stem=stem)
    click.echo(result.text())
    write_json(json_path, result.to_dict())


@cli.command("build")
@click.option("--engine", type=click.Choice(["trt"]), default="trt", show_default=True, help="the engine to build for")
@click.option("--model", required=True, metavar="NAME|CHECKPOINT|ONNX", help="zoo name, checkpoint, or an exported .onnx")
@click.option("--precision", type=click.Choice(["fp16", "fp32"]), default=None,
              help="the engine's precision (docs/precision.md); an .onnx's graph dtypes are its precision: an fp32 "
                   "graph builds either, an fp16 graph fp16 only [default: fp16 for a zoo name or checkpoint, the "
                   "graph's own for an .onnx]")
@click.option("--reference", metavar="ONNX|NAME|CHECKPOINT", default=None,
              help="for an .onnx --model: the fp32 ONNX, zoo name or checkpoint the engine's parity is checked "
                   "against [default: the .onnx itself when it is fp32, else refused; a zoo name or checkpoint "
                   "is checked against its own fp32 export]")
@click.option("--graph", type=click.Choice(["plain", "lowered"]), default=None,
              help="for a zoo name or checkpoint: the graph form exported for the engine: plain (torch's "
                   "ConvTranspose, which TensorRT runs natively) or lowered (the CPU rewrite) [default: plain]")
@click.option("--min-batch", type=click.IntRange(min=1), default=1, show_default=True, help="profile: smallest batch")
@click.option("--opt-batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="profile: the batch TensorRT tunes for")
@click.option("--max-batch", type=click.IntRange(min=1), default=256, show_default=True, help="profile: largest batch")
@click.option("--timing-cache", type=click.Path(dir_okay=False), default="gantool.timing-cache", show_default=True,
              help="TensorRT's timing cache, reused and updated (atomically) by every build; the file name gets "
                   "the TensorRT version and GPU kind before its suffix (gantool.trt10.12.0-sm90.timing-cache)")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="[default: ./NAME.PRECISION.plan]")
@click.option("--verbose", is_flag=True, help="the TensorRT builder's log")
def build_cmd(engine: str, model: str, precision: str | None, reference: str | None, graph: str | None,
              min_batch: int, opt_batch: int, max_batch: int, timing_cache: str, output: str | None,
              verbose: bool) -> None:
    """Build a TensorRT engine (strongly typed) and check it against an fp32 ONNX Runtime reference."""
    from gantool.export.trt import Profile, import_tensorrt, run_build

    profile = Profile(min_batch, opt_batch, max_batch)
    import_tensorrt()  # exit 2 with an install hint before any export work
    plan, sidecar, report = run_build(model, output, precision, profile, timing_cache, verbose, reference, graph)
    click.echo(report.text())
    click.echo(f"wrote {plan} (+ {plan.name}.json) TensorRT {sidecar['tensorrt_version']} on {sidecar['gpu']}")
