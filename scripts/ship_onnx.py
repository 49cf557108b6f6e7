"""Export shipped generators' fp16-stored weights to the ONNX files that ship beside them: the family
of `gantool export --variants` (NAME.onnx, NAME.plain.onnx, NAME.int8.onnx where it passes its checks,
NAME.mix.onnx for conditional models).

    python scripts/ship_onnx.py [NAME ...]   # default: every name in gantool.paths.SHIPPED_ONNX
    python scripts/ship_onnx.py --mix-only cgan cdcgan cwgan   # only NAME.mix.onnx, beside an existing family
    python scripts/ship_onnx.py --only int8u gan cgan    # only the variants with these tags, beside their family

gantool export validates each file (checker, shape inference, parity with PyTorch, the judge checks of
the reduced precisions) before it is kept.
"""

from __future__ import annotations

import sys

from gantool.errors import GantoolError
from gantool.export.variants import run_mix, run_variants
from gantool.paths import SHIPPED_ONNX, WEIGHTS_DIR
from gantool.train.shipped import shipped_path


def ship_onnx(name: str, tags: tuple[str, ...] | None = None) -> None:
    result = run_variants(str(shipped_path(name)), str(WEIGHTS_DIR), stem=name, tags=tags)
    for r in result.written:
        worst = max(c.max_abs for p in r.parity for c in p.comparisons)
        checks = "; ".join(f"{c.precision} on {c.engine}: agreement {c.agreement:.2%}" for c in r.checks)
        print(f"{name}: wrote {r.path} (parity max abs {worst:.2e}{'; ' + checks if checks else ''})")
    for file, why in result.not_written.items():
        print(f"{name}: {file} not shipped: {why}")


def ship_mix(name: str) -> None:
    r = run_mix(str(shipped_path(name)), str(WEIGHTS_DIR), stem=name)
    worst = max(c.max_abs for p in r.parity for c in p.comparisons)
    print(f"{name}: wrote {r.path} (family {r.metadata.family}, parity max abs {worst:.2e})")


if __name__ == "__main__":
    args = sys.argv[1:]
    mix_only = "--mix-only" in args
    only = None
    if "--only" in args:
        i = args.index("--only")
        if i + 1 >= len(args):
            sys.exit("ship_onnx.py: --only takes comma-separated variant tags, e.g. --only int8u")
        only = tuple(args[i + 1].split(","))
        del args[i:i + 2]
    try:
        for name in [a for a in args if a != "--mix-only"] or SHIPPED_ONNX:
            ship_mix(name) if mix_only else ship_onnx(name, only)
    except GantoolError as e:
        sys.exit(f"ship_onnx.py: {e}")
