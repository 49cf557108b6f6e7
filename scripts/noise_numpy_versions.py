"""Which numpy versions draw the noise export/web/noise.js reproduces: for each version, a fresh venv
with only that numpy runs gantool.noise.make_noise on fixed cases (both distributions, truncation, a
long draw through the ziggurat's tail), and its SHA-256 is compared with noise.js's under node.

    python scripts/noise_numpy_versions.py 1.26.4 2.0.2 2.2.6 2.4.6

Prints one line per version (and writes --out JSON). Needs node and PyPI; docs/web.md has the result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = [[s, n, d, dist, t] for s in (0, 1, 12345, 4294967295) for n, d in ((1, 100), (64, 128))
         for dist in ("normal", "uniform") for t in (1.0, 0.7)] + [[777, 5000, 100, "normal", 1.0]]
PYTHON = f"""
import hashlib, json, sys
sys.path.insert(0, {str(ROOT)!r})
import numpy
from gantool.noise import make_noise
h = hashlib.sha256()
for case in json.loads(sys.argv[1]):
    h.update(make_noise(*case).astype("<f4").tobytes())
print(json.dumps({{"numpy": numpy.__version__, "sha256": h.hexdigest()}}))
"""
NODE = """
import { makeNoise } from "%s";
import { createHash } from "node:crypto";
const h = createHash("sha256");
for (const c of JSON.parse(process.argv[2])) { const z = makeNoise(...c); h.update(Buffer.from(z.buffer)); }
console.log(h.digest("hex"));
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("versions", nargs="+")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    cases = json.dumps(CASES)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "noise.mjs"
        script.write_text(NODE % (ROOT / "export" / "web" / "noise.js").as_uri())
        js = subprocess.run([shutil.which("node") or "node", str(script), cases], capture_output=True, text=True,
                            check=True).stdout.strip()
        rows = []
        for v in args.versions:
            venv = Path(tmp) / f"np{v}"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            py = venv / "bin" / "python"
            subprocess.run([str(py), "-m", "pip", "install", "-q", f"numpy=={v}"], check=True, capture_output=True)
            got = json.loads(subprocess.run([str(py), "-c", PYTHON, cases], capture_output=True, text=True,
                                            check=True).stdout)
            rows.append({**got, "equals_noise_js": got["sha256"] == js})
            print(f"numpy {got['numpy']}: {'equal to' if got['sha256'] == js else 'DIFFERS from'} noise.js "
                  f"({got['sha256'][:16]})", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"noise_js_sha256": js, "cases": CASES, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
