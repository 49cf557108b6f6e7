"""`gantool compare`: two generator artifacts on the same seeded inputs (export/compare.py)."""

from __future__ import annotations

import click

from gantool.cli.app import SEED, cli, write_json
from gantool.contract import TOLERANCES
from gantool.fileio import refuse_overwrite
from gantool.spec import ZOO_NAMES

ARTIFACT = (f"a zoo name ({', '.join(ZOO_NAMES)}) or checkpoint (PyTorch fp32), an .onnx, a .plan or a golden .npz")


def _engine_choice() -> click.Choice:
    from gantool.export.compare import engines

    return click.Choice(list(engines()))


@cli.command("compare")
@click.argument("a", metavar="A")
@click.argument("b", metavar="[B]", required=False)
@click.option("--engine-a", type=_engine_choice(), default="auto", show_default=True,
              help="A's engine: auto (torch on the CPU for weights, the runtime's choice for a file), a runtime "
                   "engine, torch or torch-cuda")
@click.option("--engine-b", type=_engine_choice(), default="auto", show_default=True, help="B's engine, as --engine-a")
@click.option("--atol", type=click.FloatRange(min=0), default=None,
              help="your bound, with --rtol: |b - a| <= atol + rtol * |a| on every pixel; it then decides, the "
                   "named tolerance is reported beside it")
@click.option("--rtol", type=click.FloatRange(min=0), default=None, help="relative part of your bound [default: 0]")
@click.option("--tolerance", type=click.Choice(list(TOLERANCES)), default=None,
              help="the named tolerance (docs/precision.md) [default: that of the lower precision of A and B]")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="seed of the inputs (export's parity cases); a golden file brings its own")
@click.option("--save-golden", type=click.Path(dir_okay=False), default=None, metavar="FILE.npz",
              help="write the inputs and A's outputs (and the metadata JSON) here; B may then be left out")
@click.option("--no-judge", is_flag=True, help="skip the judge's agreement between A's and B's images")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="write the report here")
def compare_cmd(a: str, b: str | None, engine_a: str, engine_b: str, atol: float | None, rtol: float | None,
                tolerance: str | None, seed: int, save_golden: str | None, no_judge: bool,
                json_path: str | None) -> None:
    """Compare B with A (the reference) on the same seeded inputs, Polygraphy-style.

    A and B are each a zoo name or checkpoint, an .onnx, a .plan, or a golden file. Exit 1 when B fails."""
    from gantool.export.compare import failure, run_compare

    refuse_overwrite({"--json": json_path}, {"A": a, "B": b, "--save-golden": save_golden})
    report = run_compare(a, b, engine_a, engine_b, atol, rtol, tolerance, seed, save_golden, judge=not no_judge)
    click.echo(report.text())
    write_json(json_path, report.to_dict())
    if b is not None and not report.passed:
        raise failure(report)
