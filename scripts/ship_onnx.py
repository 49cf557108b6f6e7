"""Export shipped generators' fp16-stored weights to the ONNX files that ship beside them: the family
of `gantool export --variants` (NAME.onnx, NAME.plain.onnx, NAME.int8.onnx where it passes its checks).

    python scripts/ship_onnx.py [NAME ...]   # default: every name in gantool.paths.SHIPPED_ONNX

gantool export validates each file (checker, shape inference, parity with PyTorch, the judge checks of
the reduced precisions) before it is kept.
"""

from __future__ import annotations

import sys

from gantool.export.variants import run_variants
from gantool.paths import SHIPPED_ONNX, WEIGHTS_DIR
from gantool.train.shipped import shipped_path


def ship_onnx(name: str) -> None:
    result = run_variants(str(shipped_path(name)), str(WEIGHTS_DIR), stem=name)
    for r in result.written:
        worst = max(c.max_abs for p in r.parity for c in p.comparisons)
        checks = "; ".join(f"{c.precision} on {c.engine}: agreement {c.agreement:.2%}" for c in r.checks)
        print(f"{name}: wrote {r.path} (parity max abs {worst:.2e}{'; ' + checks if checks else ''})")
    for file, why in result.not_written.items():
        print(f"{name}: {file} not shipped: {why}")


if __name__ == "__main__":
    for name in sys.argv[1:] or SHIPPED_ONNX:
        ship_onnx(name)
