"""Load test of `gantool serve` from a second process on loopback.

    python benchmarks/load_test.py [--model cdcgan] [--requests 512] [--threads 2] [--json out.json]

1, 8 and 64 concurrent clients each ask for 8 images per request until a fixed number of requests
is done; then the 1-image case. In the same run it measures the engine's own batch-256 throughput
with `gantool bench`'s code, and the parts of a 1-image request (HTTP round trip, JSON, PNG, engine)
to say what limits it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time

import numpy as np

from gantool.fileio import atomic_write_bytes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, threads: int, max_batch: int, max_wait_ms: float) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gantool.cli", "serve", "--model", model, "--port", str(port),
                             "--threads", str(threads), "--max-batch", str(max_batch), "--max-wait-ms",
                             str(max_wait_ms), "--max-n", "1024"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the server did not start")


def load(url: str, clients: int, requests: int, n: int, accept: str = "application/json") -> dict:
    """`clients` threads, each with one keep-alive connection (stdlib http.client: httpx's async pool
    was itself the bottleneck at 64 clients, 980 vs 4,900 images/s), share a fixed request count."""
    import http.client
    import threading

    host, port = url.removeprefix("http://").split(":")
    ids, lock = iter(range(requests)), threading.Lock()
    lat: list[float] = []
    counts = {"errors": 0, "lost": 0}

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        while True:
            with lock:
                i = next(ids, None)
            if i is None:
                break
            t = time.perf_counter()
            try:
                conn.request("POST", "/v1/sample", body=json.dumps({"n": n, "seed": i}),
                             headers={"content-type": "application/json", "accept": accept})
                r = conn.getresponse()
                r.read()
            except (OSError, http.client.HTTPException):
                with lock:
                    counts["lost"] += 1
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
                continue
            with lock:
                lat.append(time.perf_counter() - t)
                counts["errors"] += r.status != 200

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    a = np.array(lat) * 1e3
    return {"clients": clients, "requests": requests, "images_per_request": n, "accept": accept,
            "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "images_per_s": (len(lat) - counts["errors"]) * n / wall, "requests_per_s": len(lat) / wall,
            "errors": counts["errors"], "lost": counts["lost"], "wall_s": wall}


def parts_of_one_image_request(url: str, model: str, threads: int) -> dict:
    """Median cost of each stage of a 1-image request, measured apart."""
    import httpx

    from gantool.runtime import Generator
    from gantool.images import encode_png, make_grid

    def med(fn, k: int = 200) -> float:
        ts = []
        for _ in range(k):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return float(np.median(ts) * 1e3)

    with httpx.Client(base_url=url) as c, Generator.load(model, threads=threads) as g:
        feeds = g.inputs(n=1, seed=0)
        img = g.sample(n=1, seed=0)
        import base64

        return {"http_roundtrip_healthz_ms": med(lambda: c.get("/healthz")),
                "full_request_json_ms": med(lambda: c.post("/v1/sample", json={"n": 1, "seed": 0})),
                "full_request_png_ms": med(lambda: c.post("/v1/sample", json={"n": 1, "seed": 0},
                                                          headers={"accept": "image/png"})),
                "engine_batch1_ms": med(lambda: g.run(feeds)),
                "json_encode_ms": med(lambda: json.dumps({"images_base64": base64.b64encode(img.tobytes()).decode()})),
                "png_encode_ms": med(lambda: encode_png(make_grid(img, 1)))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cdcgan")
    ap.add_argument("--requests", type=int, default=512)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-batch", type=int, default=256)
    ap.add_argument("--max-wait-ms", type=float, default=2.0)
    ap.add_argument("--json", default="benchmarks/results/serve_load.json")
    args = ap.parse_args()

    from gantool.benchmarks.bench import run_bench

    engine = run_bench(args.model, ["ort"], [256], args.threads, rounds=5, cold=False, show_progress=False)
    engine_ips = engine.stats[0].images_per_s
    proc, url = start_server(args.model, args.threads, args.max_batch, args.max_wait_ms)
    try:
        runs = [load(url, c, args.requests, 8) for c in (1, 8, 64)]
        runs += [load(url, c, args.requests, 1) for c in (1, 64)]
        parts = parts_of_one_image_request(url, args.model, args.threads)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    at64 = next(r for r in runs if r["clients"] == 64 and r["images_per_request"] == 8)
    result = {"command": " ".join(["python", *sys.argv]), "model": args.model, "threads": args.threads,
              "machine": f"{platform.machine()} {os.cpu_count()} cpus", "server": {"max_batch": args.max_batch,
                                                                                   "max_wait_ms": args.max_wait_ms},
              "engine_batch256_images_per_s": engine_ips, "runs": runs,
              "served_over_engine_at_64_clients": at64["images_per_s"] / engine_ips,
              "one_image_request_parts_ms": parts}
    atomic_write_bytes(args.json, (json.dumps(result, indent=2) + "\n").encode())
    print(f"engine (ort, batch 256): {engine_ips:.0f} images/s")
    for r in runs:
        print(f"{r['clients']:>3} clients x {r['images_per_request']} images: p50 {r['p50_ms']:.1f} ms  p99 "
              f"{r['p99_ms']:.1f} ms  {r['images_per_s']:.0f} images/s  errors {r['errors']}  lost {r['lost']}")
    print(f"served / engine at 64 clients: {result['served_over_engine_at_64_clients']:.2f}")
    print("1-image request parts (ms): " + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()))


if __name__ == "__main__":
    main()
