"""The real service on 127.0.0.1, started by the test: happy paths, every bad input, fuzzed bodies,
batching-independent seeds, bodies too large or too slow, heads that stop arriving, /metrics status
labels, engine failures and client disconnects (an in-process server with a rigged engine), a port
in use, and shutdown: requests in flight, and keep-alive requests sent just after SIGTERM.

Every wait is on a condition (a response, /metrics, a closed socket), bounded generously for a busy
2-core machine; none is a fixed sleep."""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from gantool.runtime import Generator  # noqa: E402

READ_TIMEOUT_S = 2.0  # the shared server's --read-timeout-s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "the condition") -> object:
    """Poll until condition() is truthy (its value is returned); fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout:g} s")
        time.sleep(0.01)


def start(*args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gantool.cli", "serve", "--model", "cdcgan", "--port", str(port),
                             "--threads", "1", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not start: {proc.stdout.read()}")


def stop(proc: subprocess.Popen) -> str:
    """SIGTERM, then the process drains: uvicorn re-raises the signal after a graceful shutdown."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    out = proc.stdout.read()
    assert "drained and stopped" in out and "Traceback" not in out, out
    return out


def scrape(url: str) -> dict[str, float]:
    """/metrics as {'name{labels}': value}."""
    out = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def scrape_until(url: str, predicate: Callable[[dict[str, float]], bool], what: str) -> dict[str, float]:
    """The first /metrics scrape for which predicate holds."""
    return wait_for(lambda: (m if predicate(m := scrape(url)) else None), what=what)  # type: ignore[return-value]


def served(m: dict[str, float], status: int | str, endpoint: str = "/v1/sample") -> float:
    return m.get(f'gantool_requests_total{{endpoint="{endpoint}",status="{status}"}}', 0.0)


def in_flight(m: dict[str, float], endpoint: str = "/v1/sample") -> float:
    return m.get(f'gantool_requests_in_flight{{endpoint="{endpoint}"}}', 0.0)


def raw_request(body: bytes, accept: str = "application/json", extra: str = "") -> bytes:
    return (f"POST /v1/sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: {accept}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def read_until_closed(s: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (fails if it stays open)."""
    s.settimeout(timeout)
    chunks = []
    while True:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            raise AssertionError(f"the server kept the connection open for {timeout:g} s; got {b''.join(chunks)!r}")
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def status_and_json(raw: bytes) -> tuple[int, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body), head.lower()


@pytest.fixture(scope="module")
def server():
    proc, url = start("--max-wait-ms", "20", "--max-n", "64", "--max-body-bytes", "4096", "--max-batch", "128",
                      "--read-timeout-s", str(READ_TIMEOUT_S), "--engine", "ort")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def local():
    with Generator.load("cdcgan", threads=1) as g:
        yield g


def decode(r) -> np.ndarray:
    d = r.json()
    return np.frombuffer(base64.b64decode(d["images_base64"]), np.uint8).reshape(d["shape"])


# --- the shared server -------------------------------------------------------------------------------
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
    assert meta["spec"]["arch"] == "cdcgan" and meta["max_n"] == 64 and meta["engine"] == "ort"  # --engine
    assert meta["precision"] == "fp32" and meta["choice"]["how"] == "pinned"  # what was chosen, and why
    assert "/v1/sample" in httpx.get(server + "/openapi.json").json()["paths"]
    assert meta["class_weights"] is True  # cdcgan.mix.onnx ships beside it
    mix = [[0.0] * 3 + [0.5] + [0.0] * 4 + [0.5, 0.0], [0.1] * 10]
    mixed = httpx.post(server + "/v1/sample", json={"class_weights": mix, "seed": 6})
    assert mixed.status_code == 200, mixed.text
    assert np.abs(decode(mixed).astype(int) - local.sample(class_weights=mix, seed=6)).max() <= 1
    truncated = httpx.post(server + "/v1/sample", json={"labels": [2, 6], "seed": 4, "truncation": 0.5})
    assert np.abs(decode(truncated).astype(int) - local.sample(labels=[2, 6], seed=4, truncation=0.5)).max() <= 1
    m = httpx.get(server + "/metrics").text
    assert 'gantool_requests_total{endpoint="/v1/sample",status="200"}' in m and "gantool_batch_size_bucket" in m


def test_png_grid_matches_the_images_and_takes_any_ncol(server, local):
    from PIL import Image

    from gantool.images import make_grid

    for n, ncol in ((3, 100), (10, 4), (5, None)):  # ncol above the image count is capped, not a crash
        body = {"n": n, "seed": 9, **({"ncol": ncol} if ncol else {})}
        r = httpx.post(server + "/v1/sample", json=body, headers={"accept": "image/png"})
        assert r.status_code == 200, r.text
        grid = np.asarray(Image.open(io.BytesIO(r.content)))
        want = make_grid(local.sample(n=n, seed=9), ncol or 8)
        assert grid.shape == want.shape and np.abs(grid.astype(int) - want).max() <= 1


@pytest.mark.parametrize("body, status, message", [
    ({"labels": [3, 10]}, 400, "label 10 is out of range; allowed: 0..9"),
    ({"labels": [1.5]}, 422, "labels.0"),
    ({"labels": "3"}, 422, "labels"),
    ({"n": 0}, 400, "n must be in 1..64"),
    ({"n": 65}, 400, "n must be in 1..64"),
    ({"labels": [1] * 65}, 400, "n must be in 1..64"),
    ({"n": 3, "labels": [1]}, 400, "n=3 but 1 labels"),
    ({"n": 2, "seed": -1}, 422, "seed"),
    ({"n": 2, "ncol": 0}, 422, "ncol"),
    ({"n": 2, "truncation": 0}, 422, "truncation"),
    ({"n": 2, "truncation": 1.5}, 422, "truncation"),
    ({"n": 2, "truncation": "half"}, 422, "truncation"),
    ({"n": 2, "colour": "red"}, 422, "colour"),
    ({"class_weights": [[0.5, 0.5]]}, 400, "class weights must have shape (n, 10)"),
    ({"class_weights": [[0.2] * 10]}, 400, "must sum to 1"),
    ({"class_weights": [[-1.0, 2.0] + [0.0] * 8]}, 400, "non-negative"),
    ({"class_weights": [["x"] * 10]}, 422, "class_weights"),
    ({"class_weights": [["0.5"] * 2 + [0] * 8]}, 422, "class_weights"),
    ({"class_weights": [[True] + [0] * 9]}, 422, "class_weights"),
    ({"class_weights": []}, 400, "no rows"),
    ({"class_weights": [[0.1] * 10], "labels": [1]}, 400, "labels or class_weights, not both"),
    ({"class_weights": [[0.1] * 10] * 65}, 400, "n must be in 1..64"),
    ([1, 2], 422, "invalid request"),
    ("not json", 422, "not valid JSON"),
    ("[" * 30000 + "]" * 30000, 413, "larger than 4096 bytes"),
    ("[" * 2000 + "]" * 2000, 422, "nests too deeply"),
])
def test_bad_requests_get_a_4xx_json_error(server, body, status, message):
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    r = httpx.post(server + "/v1/sample", content=content)
    assert r.status_code == status and message in r.json()["error"]


def test_unknown_endpoints_and_methods_get_json_errors(server):
    r = httpx.get(server + "/v2/nothing")
    assert r.status_code == 404 and "/v2/nothing" in r.json()["error"]
    r = httpx.get(server + "/v1/sample")
    assert r.status_code == 405 and "GET /v1/sample" in r.json()["error"]


def test_oversized_bodies_are_413_sized_or_chunked_and_counted(server):
    before = scrape(server)
    sized = httpx.post(server + "/v1/sample", content=b'{"labels": [' + b"1," * 3000 + b"1]}")
    assert sized.status_code == 413 and "larger than 4096 bytes" in sized.json()["error"]
    chunked = httpx.post(server + "/v1/sample", content=iter([b'{"labels": [', b"1," * 1500, b"1," * 1500, b"1]}"]))
    assert chunked.status_code == 413 and "larger than 4096 bytes" in chunked.json()["error"]
    within = httpx.post(server + "/v1/sample", content=iter([b'{"n": 2,', b' "seed": 1}']))  # chunked, small
    assert within.status_code == 200 and decode(within).shape == (2, 28, 28)
    after = scrape(server)
    assert served(after, 413) - served(before, 413) == 2
    assert served(after, 500) == served(before, 500) == 0
    assert httpx.get(server + "/healthz").status_code == 200


def test_every_response_is_counted_under_its_status(server):
    before = scrape(server)
    with httpx.Client(base_url=server) as c:
        assert c.post("/v1/sample", json={"n": 1}).status_code == 200
        assert c.post("/v1/sample", json={"n": 0}).status_code == 400
        assert c.post("/v1/sample", content=b"{").status_code == 422
        assert c.get("/nowhere").status_code == 404
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:  # not HTTP: uvicorn's 400, in JSON
        s.sendall(b"HELLO THERE\r\n\r\n")
        status, answer, _ = status_and_json(read_until_closed(s, 30))
        assert status == 400 and "not a valid HTTP/1.1 request" in answer["error"]
    with socket.create_connection((host, int(port))) as s:  # leaves mid-body
        s.sendall(raw_request(b'{"n": 2, "seed": 0}')[:-5])
    m = scrape_until(server, lambda m: served(m, 499) > served(before, 499), "the disconnect to be counted")
    assert {s: served(m, s) - served(before, s) for s in (200, 400, 422, 499)} == {200: 1, 400: 1, 422: 1, 499: 1}
    assert served(m, 404, "other") - served(before, 404, "other") == 1
    assert served(m, 400, "unknown") - served(before, 400, "unknown") == 1
    assert "status=\"499\": the client went away" in httpx.get(server + "/metrics").text  # said in the help


def test_fuzzed_bodies_never_kill_the_service(server):
    rng = random.Random(0)
    atoms = [None, True, -1, 0, 3, 2 ** 70, 1.5, float("inf"), "x", "", [], {}, [1, "a"], {"n": 1}]
    keys = ["n", "labels", "seed", "ncol", "x", ""]
    codes = set()
    with httpx.Client(base_url=server) as c:  # one keep-alive connection: the refusals must leave it usable
        for i in range(150):
            kind = i % 3
            if kind == 0:
                content = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
            else:
                obj = {rng.choice(keys): rng.choice(atoms) for _ in range(rng.randint(0, 4))}
                content = json.dumps(obj, allow_nan=True).encode()
            r = c.post("/v1/sample", content=content)
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


def test_stalled_bodies_and_heads_time_out_without_stalling_others(server):
    host, port = server.removeprefix("http://").split(":")
    before = scrape(server)
    body = socket.create_connection((host, int(port)))  # a body that stops arriving
    head = socket.create_connection((host, int(port)))  # a request head that stops arriving
    idle = socket.create_connection((host, int(port)))  # a connection that never sends anything
    big = socket.create_connection((host, int(port)))  # a body over the limit that stops arriving
    try:
        t = time.monotonic()
        body.sendall(b"POST /v1/sample HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"n\":")
        head.sendall(b"POST /v1/sample HTTP/1.1\r\nHost: x\r\nContent-Le")
        big.sendall(b"POST /v1/sample HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"1" * 4500)
        r = httpx.post(server + "/v1/sample", json={"n": 2, "seed": 0}, timeout=10)
        assert r.status_code == 200 and time.monotonic() - t < READ_TIMEOUT_S  # the stalled ones block nobody
        bound = READ_TIMEOUT_S + 15  # generous: a busy machine
        status, answer, headers = status_and_json(read_until_closed(body, bound))
        assert status == 408 and "did not arrive within 2 s" in answer["error"] and b"connection: close" in headers
        status, answer, _ = status_and_json(read_until_closed(head, bound))
        assert status == 408 and "headers did not arrive" in answer["error"]
        assert read_until_closed(idle, bound) == b""  # closed without an answer nobody asked for
        status, answer, headers = status_and_json(read_until_closed(big, bound))  # still a 413, not a 408
        assert status == 413 and "larger than 4096" in answer["error"] and b"connection: close" in headers
        assert time.monotonic() - t >= READ_TIMEOUT_S * 0.9
    finally:
        for s in (body, head, idle, big):
            s.close()
    assert httpx.post(server + "/v1/sample", json={"n": 2, "seed": 0}, timeout=10).status_code == 200
    after = scrape(server)
    assert served(after, 408) - served(before, 408) == 1
    assert served(after, 408, "unknown") - served(before, 408, "unknown") == 1


# --- an in-process server with a rigged engine ----------------------------------------------------------
@contextmanager
def in_process(generator: Generator, **config: object) -> Iterator[str]:
    """The server `gantool serve` runs (make_server), on a free port in this process."""
    from gantool.serve.app import ServeConfig, bind, make_server

    sock = bind("127.0.0.1", 0)
    server = make_server(generator, ServeConfig(**config))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), what="the in-process server to start")
        assert server.started
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        assert not thread.is_alive()


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def rigged():
    """A server whose engine fails on 7 images, gives 3 for 8, gives garbage for 6 (a bug past the
    engine), and holds 5-image batches until released."""
    release = threading.Event()
    log, records = logging.getLogger("gantool.serve"), Records()
    log.addHandler(records)
    level = log.level
    log.setLevel(logging.INFO)
    with Generator.load("cdcgan", threads=1, max_n=64) as g:
        real = g.run

        def run(feeds):
            n = len(feeds["z"])
            if n == 7:
                raise RuntimeError("rigged failure\n  on two lines")
            if n == 8:
                return real(feeds)[:3]  # too few images: must not take the batcher down
            if n == 6:
                return np.zeros(6, np.float32)  # the right length, not images
            if n == 5:
                assert release.wait(60)
            return real(feeds)

        g.run = run  # what the batcher calls
        try:
            with in_process(g, max_wait_ms=0.0, max_n=64) as url:
                yield url, release, records.records
        finally:
            release.set()
            log.removeHandler(records)
            log.setLevel(level)


@pytest.mark.parametrize("n, reason", [(7, "RuntimeError: rigged failure on two lines"),
                                       (8, "TypeError: the engine returned ndarray (3, 1, 28, 28) for 8 images")])
def test_an_engine_failure_is_a_json_500_logged_once(rigged, n, reason):
    url, _, records = rigged
    before, seen = scrape(url), len(records)
    r = httpx.post(url + "/v1/sample", json={"n": n, "seed": 0}, timeout=30)
    assert r.status_code == 500 and "engine failed" in r.json()["error"] and reason.split(":")[0] in r.json()["error"]
    assert httpx.post(url + "/v1/sample", json={"n": 2, "seed": 0}).status_code == 200  # the engine still serves
    after = scrape(url)
    assert served(after, 500) - served(before, 500) == 1
    assert after['gantool_errors_total{kind="engine"}'] - before.get('gantool_errors_total{kind="engine"}', 0) == 1
    errors = [rec for rec in records[seen:] if rec.levelno >= logging.WARNING]
    assert len(errors) == 1 and errors[0].exc_info is None, [rec.getMessage() for rec in errors]
    message = errors[0].getMessage()
    assert "\n" not in message and reason in message and f"{n} images" in message


def test_a_bug_is_a_json_500_with_its_traceback_logged(rigged):
    url, _, records = rigged
    before, seen = scrape(url), len(records)
    r = httpx.post(url + "/v1/sample", json={"n": 6, "seed": 0}, timeout=30)
    assert r.status_code == 500 and r.json()["error"].startswith("internal error")
    assert served(scrape(url), 500) - served(before, 500) == 1
    errors = [rec for rec in records[seen:] if rec.levelno >= logging.WARNING]
    assert len(errors) == 1 and errors[0].exc_info is not None  # a bug: the traceback is for whoever fixes it


def test_a_client_that_leaves_is_counted_499_and_its_queued_work_dropped(rigged):
    url, release, records = rigged
    host, port = url.removeprefix("http://").split(":")
    release.clear()
    before, seen = scrape(url), len(records)
    running = socket.create_connection((host, int(port)))
    running.sendall(raw_request(b'{"n": 5, "seed": 0}'))  # the engine holds this one
    wait_for(lambda: in_flight(scrape(url)) == 1, what="the 5-image request to be in flight")
    queued = socket.create_connection((host, int(port)))
    queued.sendall(raw_request(b'{"n": 3, "seed": 0}'))  # queued behind it
    wait_for(lambda: in_flight(scrape(url)) == 2, what="the 3-image request to be queued")
    queued.close()
    running.close()
    m = scrape_until(url, lambda m: served(m, 499) - served(before, 499) == 2, "both disconnects to be counted")
    assert in_flight(m) == 0 and served(m, 200) == served(before, 200)
    release.set()
    assert httpx.post(url + "/v1/sample", json={"n": 2, "seed": 0}, timeout=30).status_code == 200
    after = scrape(url)
    # the engine ran the 5 images it had started and the next 2; the queued 3 were dropped unrun
    assert after["gantool_batch_size_sum"] - before["gantool_batch_size_sum"] == 7
    assert after["gantool_images_total"] - before["gantool_images_total"] == 2
    assert not [rec for rec in records[seen:] if rec.exc_info], "a disconnect logged a traceback"


# --- the command line and shutdown ----------------------------------------------------------------------
def test_engine_choices_are_the_runtimes():
    from gantool.runtime.generator import ENGINES

    r = subprocess.run([sys.executable, "-m", "gantool.cli", "serve", "--model", "cdcgan", "--engine", "nope"],
                       check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and all(e in r.stderr for e in ENGINES), r.stderr


def test_a_port_in_use_is_one_line_and_nothing_claims_to_serve():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "gantool.cli", "serve", "--model", "cdcgan", "--port", str(port)],
                           check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr == f"gantool: error: port {port} on 127.0.0.1 is in use; choose another --port.\n"


def test_graceful_shutdown_answers_every_request_in_flight(local):
    proc, url = start("--max-batch", "64", "--max-wait-ms", "1")
    seeds = list(range(24))

    def ask(seed: int):
        return httpx.post(url + "/v1/sample", json={"n": 64, "seed": seed}, timeout=60)

    with ThreadPoolExecutor(len(seeds)) as pool:
        futures = [pool.submit(ask, s) for s in seeds]

        def all_received_some_unanswered() -> bool:  # the engine works through them one batch at a time
            m = scrape(url)
            return in_flight(m) > 0 and in_flight(m) + served(m, 200) == len(seeds)

        wait_for(all_received_some_unanswered, what="all 24 requests to reach the server with some unanswered")
        proc.send_signal(signal.SIGTERM)
        responses = [f.result() for f in futures]
    stop(proc)
    assert [r.status_code for r in responses] == [200] * len(seeds)
    for seed, r in zip(seeds, responses):  # each answer is its own request's, exactly once
        assert np.abs(decode(r).astype(int) - local.sample(n=64, seed=seed)).max() <= 1


@pytest.mark.parametrize("round_", range(3))
def test_keep_alive_requests_sent_just_after_sigterm_are_answered(round_):
    """Idle keep-alive connections, requests in flight, SIGTERM; then a request on each idle connection,
    half at once, half once the server has stopped accepting. Each gets a whole answer (200, or 503),
    which says Connection: close; none is reset."""
    proc, url = start("--max-batch", "64", "--max-wait-ms", "1")
    host, port = url.removeprefix("http://").split(":")
    conns = [http.client.HTTPConnection(host, int(port), timeout=60) for _ in range(6)]
    body = json.dumps({"n": 2, "seed": 1}).encode()
    headers = {"content-type": "application/json"}
    for c in conns:  # each connection has served one request and is idle, kept alive
        c.request("POST", "/v1/sample", body, headers)
        assert c.getresponse().read() and c.sock is not None
    with ThreadPoolExecutor(6) as pool:
        load = [pool.submit(httpx.post, url + "/v1/sample", json={"n": 64, "seed": s}, timeout=60) for s in range(6)]
        # every load request has reached the server (one still connecting when it stops listening could be
        # reset by the kernel: a race no server can close), most still in flight
        scrape_until(url, lambda m: in_flight(m) + served(m, 200) == len(conns) + len(load), "the load to arrive")
        proc.send_signal(signal.SIGTERM)
        for c in conns[:3]:
            c.request("POST", "/v1/sample", body, headers)

        def refused() -> bool:
            try:
                socket.create_connection((host, int(port)), timeout=5).close()
                return False
            except ConnectionRefusedError:
                return True

        wait_for(refused, what="the server to stop accepting")
        for c in conns[3:]:
            c.request("POST", "/v1/sample", body, headers)
        answers = []
        for c in conns:
            r = c.getresponse()  # raises on a reset or a close without an answer
            answers.append((r.status, r.getheader("connection"), len(r.read()), r.getheader("content-length")))
        assert all(r.result().status_code == 200 for r in load)
    stop(proc)
    for status, connection, length, declared in answers:
        assert status in (200, 503) and length == int(declared) > 0
    assert all(connection == "close" for _, connection, _, _ in answers[3:])  # sent after shutdown began


def test_the_batcher_never_merges_labels_with_class_weights():
    """They run on different graphs: requests of each kind batch with their own kind only."""
    import asyncio

    from gantool.serve.batcher import MicroBatcher

    calls: list[tuple[str, ...]] = []

    def infer(feeds: dict[str, np.ndarray]) -> np.ndarray:
        calls.append(tuple(sorted(feeds)))
        return feeds["z"][:, :1] * 2

    async def run() -> list[np.ndarray]:
        b = MicroBatcher(infer, max_batch=64, max_wait_ms=200)
        b.start()
        jobs = [{"z": np.full((2, 3), i, np.float32), **({"labels": np.zeros(2, np.int64)} if i % 2 else
                                                          {"class_weights": np.full((2, 10), 0.1, np.float32)})}
                for i in range(4)]
        out = await asyncio.gather(*(b.submit(j) for j in jobs))
        await b.stop()
        return out

    out = asyncio.run(run())
    assert [o[:, 0].tolist() for o in out] == [[0, 0], [2, 2], [4, 4], [6, 6]]
    assert set(calls) == {("class_weights", "z"), ("labels", "z")}  # each call one kind, both kinds served
