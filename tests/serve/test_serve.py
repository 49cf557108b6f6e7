"""The real service on 127.0.0.1, started by the test: happy paths, every bad input, fuzzed bodies,
batching-independent seeds, a stalled client, and a graceful shutdown with requests in flight."""

from __future__ import annotations

import base64
import io
import json
import random
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from gantool.runtime import Generator  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gantool.cli", "serve", "--model", "cdcgan", "--port", str(port),
                             "--threads", "1", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"server did not start: {proc.stdout.read()}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then the process drains: uvicorn re-raises the signal after a graceful shutdown."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    assert "drained and stopped" in proc.stdout.read()


@pytest.fixture(scope="module")
def server():
    proc, url = start("--max-wait-ms", "20", "--max-n", "64", "--max-body-bytes", "4096", "--max-batch", "128")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def local():
    with Generator.load("cdcgan") as g:
        yield g


def decode(r) -> np.ndarray:
    d = r.json()
    return np.frombuffer(base64.b64decode(d["images_base64"]), np.uint8).reshape(d["shape"])


def test_happy_paths(server, local):
    r = httpx.post(server + "/v1/sample", json={"labels": [3, 3, 7], "seed": 5})
    assert r.status_code == 200 and r.json()["labels"] == [3, 3, 7] and r.json()["seed"] == 5
    assert np.abs(decode(r).astype(int) - local.sample(labels=[3, 3, 7], seed=5)).max() <= 1
    png = httpx.post(server + "/v1/sample", json={"n": 10, "seed": 1}, headers={"accept": "image/png"})
    assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    npy = httpx.post(server + "/v1/sample", content=b'{"n": 4, "seed": 2}', headers={"accept": "application/x-npy"})
    assert np.load(io.BytesIO(npy.content)).shape == (4, 28, 28)
    unseeded = httpx.post(server + "/v1/sample", json={"labels": [1, 2]})
    replay = httpx.post(server + "/v1/sample", json={"labels": [1, 2], "seed": int(unseeded.headers["x-gantool-seed"])})
    assert np.abs(decode(unseeded).astype(int) - decode(replay)).max() <= 1
    meta = httpx.get(server + "/v1/model").json()
    assert meta["spec"]["arch"] == "cdcgan" and meta["max_n"] == 64
    assert "/v1/sample" in httpx.get(server + "/openapi.json").json()["paths"]
    m = httpx.get(server + "/metrics").text
    assert 'gantool_requests_total{endpoint="/v1/sample",status="200"}' in m and "gantool_batch_size_bucket" in m


@pytest.mark.parametrize("body, status, message", [
    ({"labels": [3, 10]}, 400, "label 10 is out of range; allowed: 0..9"),
    ({"labels": [1.5]}, 422, "labels.0"),
    ({"labels": "3"}, 422, "labels"),
    ({"n": 0}, 400, "n must be in 1..64"),
    ({"n": 65}, 400, "n must be in 1..64"),
    ({"n": 3, "labels": [1]}, 400, "n=3 but 1 labels"),
    ({"n": 2, "seed": -1}, 422, "seed"),
    ({"n": 2, "colour": "red"}, 422, "colour"),
    ([1, 2], 422, "invalid request"),
    ("not json", 422, "not valid JSON"),
    ("[" * 30000 + "]" * 30000, 413, "larger than 4096 bytes"),
    ("[" * 2000 + "]" * 2000, 422, "nests too deeply"),
])
def test_bad_requests_get_a_4xx_json_error(server, body, status, message):
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    r = httpx.post(server + "/v1/sample", content=content)
    assert r.status_code == status and message in r.json()["error"]


def test_oversized_body_is_refused(server):
    r = httpx.post(server + "/v1/sample", content=b'{"labels": [' + b"1," * 3000 + b"1]}")
    assert r.status_code == 413 and "larger than 4096 bytes" in r.json()["error"]


def test_fuzzed_bodies_never_kill_the_service(server):
    rng = random.Random(0)
    atoms = [None, True, -1, 0, 3, 2 ** 70, 1.5, float("inf"), "x", "", [], {}, [1, "a"], {"n": 1}]
    keys = ["n", "labels", "seed", "ncol", "x", ""]
    codes = set()
    for i in range(150):
        kind = i % 3
        if kind == 0:
            content = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
        else:
            obj = {rng.choice(keys): rng.choice(atoms) for _ in range(rng.randint(0, 4))}
            content = json.dumps(obj, allow_nan=True).encode()
        r = httpx.post(server + "/v1/sample", content=content)
        codes.add(r.status_code)
        assert r.status_code == 200 or (400 <= r.status_code < 500 and "error" in r.json())
    assert codes - {200} and httpx.get(server + "/healthz").status_code == 200


def test_same_seed_same_images_whatever_the_batch(server):
    alone = decode(httpx.post(server + "/v1/sample", json={"labels": [0, 1, 2, 3, 4, 5, 6, 7], "seed": 42}))

    def ask(seed: int) -> np.ndarray:
        return decode(httpx.post(server + "/v1/sample", json={"labels": [0, 1, 2, 3, 4, 5, 6, 7], "seed": seed},
                                 timeout=30))

    with ThreadPoolExecutor(16) as pool:  # 16 concurrent requests: merged into shared engine calls
        results = list(pool.map(ask, [42 if i % 4 == 0 else 1000 + i for i in range(16)]))
    for i in range(0, 16, 4):
        assert np.abs(results[i].astype(int) - alone).max() <= 1
    m = httpx.get(server + "/metrics").text
    merged = [line for line in m.splitlines() if line.startswith("gantool_batch_size_bucket") and 'le="8.0"' in line]
    total = [line for line in m.splitlines() if line.startswith("gantool_batch_size_count")]
    assert float(merged[0].split()[-1]) < float(total[0].split()[-1])  # some engine calls held > 8 images


def test_a_stalled_client_does_not_stall_others(server):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"POST /v1/sample HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"n\":")  # then nothing
        t = time.perf_counter()
        r = httpx.post(server + "/v1/sample", json={"n": 2, "seed": 0}, timeout=10)
        assert r.status_code == 200 and time.perf_counter() - t < 5


def test_graceful_shutdown_answers_every_request_in_flight(local):
    proc, url = start("--max-batch", "64", "--max-wait-ms", "1")
    seeds = list(range(24))

    def ask(seed: int):
        return httpx.post(url + "/v1/sample", json={"n": 64, "seed": seed}, timeout=60)

    with ThreadPoolExecutor(len(seeds)) as pool:
        futures = [pool.submit(ask, s) for s in seeds]
        time.sleep(0.3)  # every request is sent; the engine works through them one batch at a time
        proc.send_signal(signal.SIGTERM)
        responses = [f.result() for f in futures]
    stop(proc)
    assert [r.status_code for r in responses] == [200] * len(seeds)
    for seed, r in zip(seeds, responses):  # each answer is its own request's, exactly once
        assert np.abs(decode(r).astype(int) - local.sample(n=64, seed=seed)).max() <= 1
