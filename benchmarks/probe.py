"""Cold start and peak memory of one engine, measured in a fresh process:

    python -m gantool.benchmarks.probe ENGINE MODEL ONNX THREADS BATCHES SPEC_JSON [PRECISION PINNED]

ONNX: the fp32 file, or JSON {"onnx": {precision: file}, "form": graph form}; prints one JSON line: seconds to import+load, to the first 1-image sample, and the peak RSS after each batch.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM resets at exec; ru_maxrss would inherit the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def main() -> None:
    engine, model, onnx_path, threads, batches = sys.argv[1:6]
    from gantool.benchmarks.engines import Sources, feeds_for, make_engine
    from gantool.spec import ModelSpec

    files: dict[str, Any] = json.loads(onnx_path) if onnx_path.startswith("{") else {"onnx": {"fp32": onnx_path}}
    src = Sources(model=model, onnx={k: Path(v) for k, v in files["onnx"].items()},  # the parent checked them
                  form=files.get("form"), no_fp32=str(files.get("no_fp32", "no fp32 ONNX")))
    precision, pinned = (sys.argv[7], sys.argv[8] == "1") if len(sys.argv) > 8 else ("fp32", True)
    eng = make_engine(engine, src, int(threads), precision, pinned)  # the runtime reads its cached choice
    t_load = time.perf_counter()
    spec = ModelSpec.from_dict(json.loads(sys.argv[6]))

    eng.run(feeds_for(spec, 1))
    t_first = time.perf_counter()
    peak = {}
    for b in sorted(int(x) for x in batches.split(",")):
        eng.run(feeds_for(spec, b))
        eng.run(feeds_for(spec, b))
        peak[b] = peak_rss_mb()
    eng.close()
    print(json.dumps({"import_and_load_s": t_load - T0, "first_sample_s": t_first - t_load,
                      "cold_start_s": t_first - T0, "peak_rss_mb": peak}))


if __name__ == "__main__":
    main()
