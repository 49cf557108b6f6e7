"""The HTTP service: FastAPI on uvicorn. POST /v1/sample, GET /v1/model, /healthz, /metrics, /docs.

Every error is a status with {"error": "..."} naming the problem; bad requests never reach the engine.
The request body is read, bounded in size and time, by guard.Guard before the app runs; request
heads are bounded in time by protocol.GuardedH11Protocol. Shutdown drains: uvicorn stops accepting,
idle keep-alive connections get a grace period, in-flight requests finish through the batcher, then
the batcher stops.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import io
import json
import logging
import secrets
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError
from starlette.exceptions import HTTPException

from gantool.contract import CLASS_WEIGHTS, GRID_COLUMNS
from gantool.errors import GantoolError
from gantool.images import encode_png, make_grid
from gantool.runtime.generator import Generator, SampleError
from gantool.serve.batcher import EngineError, MicroBatcher, ShuttingDown
from gantool.serve.guard import Guard
from gantool.serve.metrics import UNPARSED, Metrics
from gantool.serve.protocol import GuardedH11Protocol

log = logging.getLogger(__name__)

NPY = "application/x-npy"
DRAIN_GRACE_S = 2.0  # how long an idle keep-alive connection stays open after SIGTERM (protocol.py)


@dataclass(frozen=True)
class ServeConfig:
    max_batch: int = 256
    max_wait_ms: float = 5.0
    max_n: int = 1024
    timeout_s: float = 30.0  # the wait for the engine
    max_body_bytes: int = 64 * 1024
    read_timeout_s: float = 10.0  # the request head, and the body, must each arrive within this
    max_in_flight: int = 1024  # requests being served at once; more get a 503


class SampleRequest(BaseModel):
    """labels (conditional models) or n (any model), and a seed for reproducible images."""

    model_config = ConfigDict(extra="forbid")
    labels: list[StrictInt] | None = Field(None, description="one image per label, e.g. [3, 3, 7]")
    n: StrictInt | None = Field(None, description="number of images; conditional models cycle labels 0..K-1")
    seed: StrictInt | None = Field(None, ge=0, le=2 ** 63 - 1, description="same seed, same images")
    ncol: StrictInt | None = Field(None, ge=1, le=256, description=f"PNG grid columns [default: {GRID_COLUMNS}]")
    truncation: float | None = Field(None, gt=0, le=1, allow_inf_nan=False,
                                     description="keep the central share t of each noise coordinate [default: 1, none]")
    class_weights: list[list[StrictFloat | StrictInt]] | None = Field(
        None, description="one row of class weights per image instead of labels, each non-negative and summing "
                          "to 1, e.g. [[0, 0, 0, 0.5, 0, 0, 0, 0, 0.5, 0]]: a digit between 3 and 8")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(generator: Generator, config: ServeConfig = ServeConfig(),
               draining: Callable[[], bool] = lambda: False) -> Guard:
    """The ASGI app: FastAPI inside the Guard. draining() is true once shutdown began (answers then
    carry Connection: close)."""
    metrics = Metrics()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["batcher"] = MicroBatcher(generator.run, config.max_batch, config.max_wait_ms, metrics.batch.observe)
        state["batcher"].start()
        yield
        await state["batcher"].stop()  # every queued request is answered first
        log.info("gantool serve: drained and stopped (%d engine calls)", state["batcher"].served)

    app = FastAPI(title="gantool", version=__import__("gantool").__version__, lifespan=lifespan,
                  description=f"Sampling service for the {generator.spec.arch} generator.")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:  # 404, 405: JSON like the rest
        return JSONResponse({"error": f"{e.detail}: {request.method} {request.url.path}"}, status_code=e.status_code,
                            headers=e.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, e: Exception) -> JSONResponse:  # the Guard logs it
        metrics.errors.labels("internal").inc()
        return error(500, "internal error; the server log has the details")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        return {"spec": generator.spec.to_dict(), "source": generator.source, "engine": generator.backend.name,
                "precision": generator.precision, "precisions": {str(b): x for b, x in generator.precisions.items()},
                "choice": generator.choice, "class_weights": generator.conditional and generator.mix_path().is_file(),
                "max_n": config.max_n, "max_batch": config.max_batch, "max_wait_ms": config.max_wait_ms}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    schema = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": SampleRequest.model_json_schema()}}}}

    @app.post("/v1/sample", openapi_extra=schema,
              responses={200: {"content": {"image/png": {}, NPY: {}, "application/json": {}}}})
    async def sample(request: Request) -> Response:
        """Images for labels or n, with a seed. Accept: image/png (grid), application/x-npy, or JSON (base64)."""
        try:  # JSON whatever the Content-Type says: curl -d sends form encoding by default
            body = SampleRequest.model_validate(json.loads(await request.body()))
        except (ValueError, RecursionError) as e:  # bad JSON (or absurdly nested), or a field that fails
            metrics.errors.labels("validation").inc()
            return error(422, _validation_message(e))
        seed = body.seed if body.seed is not None else secrets.randbits(63)  # echoed, so it can be replayed
        try:
            feeds = generator.inputs(n=body.n, labels=body.labels, seed=seed,  # labels cycle 0..K-1 by default
                                     truncation=1.0 if body.truncation is None else body.truncation,
                                     class_weights=body.class_weights)
            if CLASS_WEIGHTS in feeds:  # the mix graph opens once, off the event loop; missing: this request's fault
                await asyncio.to_thread(generator.mix_backend)
        except SampleError as e:
            metrics.errors.labels("bad_input").inc()
            return error(400, str(e).split(" Note:")[0])
        try:
            raw = await asyncio.wait_for(state["batcher"].submit(feeds), config.timeout_s)
        except asyncio.TimeoutError:
            metrics.errors.labels("timeout").inc()
            return error(503, f"the request took longer than {config.timeout_s:g} s; try fewer images.")
        except ShuttingDown:
            metrics.errors.labels("shutting_down").inc()
            return error(503, "the server is shutting down; retry on another instance.")
        except EngineError as e:  # the batcher logged it, once per batch
            metrics.errors.labels("engine").inc()
            return error(500, f"the engine failed on this request's batch ({e}); the server log has the details.")
        images = generator.postprocess(raw)  # (N, H, W) gray, (N, H, W, C) color: what Generator.sample gives
        metrics.images.inc(len(images))
        response = await encode(images, feeds, body, seed, request.headers.get("accept", "*/*"))
        response.headers["x-gantool-seed"] = str(seed)
        return response

    async def encode(images: np.ndarray, feeds: dict[str, np.ndarray], body: SampleRequest, seed: int,
                     accept: str) -> Response:
        if "image/png" in accept:  # make_grid caps ncol at the image count
            png = await asyncio.to_thread(lambda: encode_png(make_grid(images, body.ncol or GRID_COLUMNS)))
            return Response(png, media_type="image/png")
        if NPY in accept or "application/octet-stream" in accept:
            buf = io.BytesIO()
            np.save(buf, images)
            return Response(buf.getvalue(), media_type=NPY)
        labels = feeds.get("labels")
        return JSONResponse({"shape": list(images.shape), "dtype": "uint8", "seed": seed,
                             "labels": None if labels is None else labels.tolist(),
                             "images_base64": base64.b64encode(images.tobytes()).decode()})

    endpoints = {str(route.path) for route in app.routes if hasattr(route, "path")}
    return Guard(app, metrics, endpoints, config.max_body_bytes, config.read_timeout_s, config.max_in_flight,
                 draining)


def _validation_message(e: Exception) -> str:
    if isinstance(e, ValidationError):
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'body'}: {err['msg']}"
                             for err in e.errors()[:5])
        return f"invalid request: {problems}"
    if isinstance(e, RecursionError):
        return "the body nests too deeply to be a sample request"
    return f"the body is not valid JSON ({str(e)[:100]}); send e.g. {{\"labels\": [3, 7], \"seed\": 0}}"


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, made before anything else starts: a port in use is one clear error, and
    nothing claims to serve on a port it could not take. Port 0 picks a free one."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise GantoolError(f"cannot listen on host {host!r} ({e.strerror}); allowed: an address or name of this "
                           f"machine, e.g. 127.0.0.1 or 0.0.0.0.") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart right after a stop (TIME_WAIT)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise GantoolError(f"port {port} on {host} is in use; choose another --port.") from None
        raise GantoolError(f"cannot listen on {host} port {port} ({e.strerror}); choose another --host or "
                           f"--port.") from None
    return sock


def make_server(generator: Generator, config: ServeConfig = ServeConfig(),
                drain_grace: float = DRAIN_GRACE_S) -> uvicorn.Server:
    """The uvicorn server `serve` runs (tests run it in-process): run it with server.run(sockets=[bind(...)])."""
    server: uvicorn.Server
    app = create_app(generator, config, draining=lambda: server.should_exit)
    protocol = GuardedH11Protocol.configured(config.read_timeout_s, drain_grace,
                                             lambda status: app.metrics.requests.labels(UNPARSED, str(status)).inc())
    server = uvicorn.Server(uvicorn.Config(
        app, http=protocol, lifespan="on", log_level="warning", timeout_graceful_shutdown=30,
        timeout_keep_alive=5, limit_concurrency=4 * config.max_in_flight))  # a backstop: the Guard's limit is first
    return server


def serve(model: str, host: str = "127.0.0.1", port: int = 8000, config: ServeConfig = ServeConfig(),
          threads: int | None = None, engine: str = "auto", precision: str = "fp32", progress: Any = None) -> None:
    """`gantool serve`: bind, load the model, serve until SIGTERM/SIGINT, drain."""
    from gantool.export.cache import (
        resolve_model,  # fills the 64x64 cache where torch and onnx exist
    )

    sock = bind(host, port)
    try:
        g = Generator.load(resolve_model(model), engine=engine, threads=threads, max_n=config.max_n,
                           precision=precision, progress=progress)
    except BaseException:
        sock.close()
        raise
    where = f"[{host}]" if ":" in host else host
    log.info("gantool serve: %s (%s) on http://%s:%d (max batch %d, max wait %g ms, max n %d)", g.spec.arch,
             g.backend.name, where, sock.getsockname()[1], config.max_batch, config.max_wait_ms, config.max_n)
    make_server(g, config).run(sockets=[sock])
