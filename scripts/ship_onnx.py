"""Export shipped generators' fp16-stored weights to the ONNX files that ship beside them.

    python scripts/ship_onnx.py [NAME ...]   # default: every name in gantool.paths.SHIPPED_ONNX

gantool export validates each file (checker, shape inference, parity with PyTorch) before it is kept.
"""

from __future__ import annotations

import sys

from gantool.export.run import run_export
from gantool.paths import SHIPPED_ONNX, shipped_onnx
from gantool.train.shipped import shipped_path


def ship_onnx(name: str) -> None:
    result = run_export(str(shipped_path(name)), str(shipped_onnx(name)))
    worst = max(c.max_abs for r in result.parity for c in r.comparisons)
    print(f"{name}: wrote {result.path} (parity max abs {worst:.2e})")


if __name__ == "__main__":
    for name in sys.argv[1:] or SHIPPED_ONNX:
        ship_onnx(name)
