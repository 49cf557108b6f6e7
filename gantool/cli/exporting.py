"""`gantool export` and `gantool build`: ONNX files, Triton repositories, TensorRT engines."""

from __future__ import annotations


import click

from gantool.cli.app import cli, need_torch, write_json
from gantool.errors import GantoolError


@cli.command("export")
@click.option("--model", required=True, metavar="NAME|CHECKPOINT", help="zoo name (shipped weights) or a checkpoint")
@click.option("--format", "fmt", type=click.Choice(["onnx", "triton"]), default="onnx", show_default=True,
              help="a single ONNX file, or a Triton model repository folder")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True)
@click.option("--opset", type=click.IntRange(17, 23), default=18, show_default=True)
@click.option("-o", "--output", type=click.Path(), default=None,
              help="[default: ./NAME.onnx, ./NAME.fp16.onnx, ./NAME.int8.onnx; triton: ./model_repository]")
@click.option("--max-batch", type=int, default=256, show_default=True, help="triton: max_batch_size")
@click.option("--plan", type=click.Path(dir_okay=False), default=None, help="triton: serve this built engine")
@click.option("--samples", type=click.IntRange(min=100), default=None,
              help="fp16/int8: samples for the judge-agreement check [default: 5000]")
@click.option("--lower/--no-lower", default=True, show_default=True,
              help="rewrite ConvTranspose into exact Gemm / phase-Conv equivalents, faster on ONNX Runtime's CPU")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="the validation report")
def export_cmd(model: str, fmt: str, precision: str, opset: int, output: str | None, max_batch: int,
               plan: str | None, samples: int | None, lower: bool, json_path: str | None) -> None:
    """Export a generator to ONNX (dynamic batch and labels), validate it against PyTorch."""
    need_torch("export")
    if fmt == "triton":
        from gantool.export.run import run_triton_export

        result, folder = run_triton_export(model, output or "model_repository", precision, opset, max_batch, plan,
                                           semantic_samples=samples, lower=lower)
        click.echo(result.text())
        click.echo(f"wrote Triton model {folder}")
        write_json(json_path, result.to_dict())
        return
    if plan is not None:
        raise GantoolError("--plan is a Triton option; allowed only with --format triton.")
    from gantool.export.run import run_export

    result = run_export(model, output, precision=precision, opset=opset, semantic_samples=samples, lower=lower)
    click.echo(result.text())
    click.echo(f"wrote {result.path}")
    write_json(json_path, result.to_dict())


@cli.command("build")
@click.option("--engine", type=click.Choice(["trt"]), default="trt", show_default=True)
@click.option("--model", required=True, metavar="NAME|ONNX", help="zoo name, checkpoint, or an exported .onnx")
@click.option("--precision", type=click.Choice(["fp16", "fp32"]), default="fp16", show_default=True)
@click.option("--min-batch", type=int, default=1, show_default=True)
@click.option("--opt-batch", type=int, default=64, show_default=True)
@click.option("--max-batch", type=int, default=256, show_default=True)
@click.option("--timing-cache", type=click.Path(dir_okay=False), default="gantool.timing-cache", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="[default: ./NAME.PRECISION.plan]")
@click.option("--verbose", is_flag=True, help="the TensorRT builder's log")
def build_cmd(engine: str, model: str, precision: str, min_batch: int, opt_batch: int, max_batch: int,
              timing_cache: str, output: str | None, verbose: bool) -> None:
    """Build a TensorRT engine (strongly typed, FP16 by default) and check it against ONNX Runtime."""
    from gantool.export.trt import Profile, import_tensorrt, run_build

    if max_batch < 1 or min_batch < 1:
        raise GantoolError(f"batch sizes must be >= 1; got min {min_batch}, max {max_batch}.")
    profile = Profile(min_batch, opt_batch, max_batch)
    import_tensorrt()  # exit 2 with an install hint before any export work
    plan, sidecar, report = run_build(model, output, precision, profile, timing_cache, verbose)
    click.echo(report.text())
    click.echo(f"wrote {plan} (+ {plan.name}.json) TensorRT {sidecar['tensorrt_version']} on {sidecar['gpu']}")


