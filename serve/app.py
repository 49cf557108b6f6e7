"""The HTTP service: FastAPI on uvicorn. POST /v1/sample, GET /v1/model, /healthz, /metrics, /docs.

Every bad request gets a 4xx with {"error": "..."} naming the problem; the engine never sees it.
Shutdown drains: uvicorn stops accepting, in-flight requests finish through the batcher, then the
batcher stops.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from gantool.runtime.generator import Generator, SampleError
from gantool.images import make_grid
from gantool.serve.batcher import MicroBatcher
from gantool.serve.metrics import Metrics

NPY = "application/x-npy"


@dataclass(frozen=True)
class ServeConfig:
    max_batch: int = 256
    max_wait_ms: float = 5.0
    max_n: int = 1024
    timeout_s: float = 30.0
    max_body_bytes: int = 64 * 1024


class SampleRequest(BaseModel):
    """labels (conditional models) or n (any model), and a seed for reproducible images."""

    model_config = ConfigDict(extra="forbid")
    labels: list[StrictInt] | None = Field(None, description="one image per label, e.g. [3, 3, 7]")
    n: StrictInt | None = Field(None, description="number of images; conditional models cycle labels 0..K-1")
    seed: StrictInt | None = Field(None, ge=0, le=2 ** 63 - 1, description="same seed, same images")
    ncol: StrictInt | None = Field(None, ge=1, le=256, description="PNG grid columns [default: 8]")


class BodyLimit:
    """Pure ASGI middleware: refuse bodies over the limit (413) without reading them into memory."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await _too_large(send, self.limit)
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _BodyTooLarge:
            await _too_large(send, self.limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Any, limit: int) -> None:
    body = json.dumps({"error": f"request body is larger than {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(generator: Generator, config: ServeConfig = ServeConfig()) -> Any:
    metrics = Metrics()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["batcher"] = MicroBatcher(generator.run, config.max_batch, config.max_wait_ms, metrics.batch.observe)
        state["batcher"].start()
        yield
        await state["batcher"].stop()  # every queued request is answered first
        print(f"gantool serve: drained and stopped ({state['batcher'].served} engine calls)", flush=True)

    app = FastAPI(title="gantool", version=__import__("gantool").__version__, lifespan=lifespan,
                  description=f"Sampling service for the {generator.spec.arch} generator.")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        return {"spec": generator.spec.to_dict(), "source": generator.source, "engine": generator.backend.name,
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
        t0 = time.perf_counter()
        status = "200"
        try:
            try:  # JSON whatever the Content-Type says: curl -d sends form encoding by default
                body = SampleRequest.model_validate(json.loads(await request.body()))
            except (ValueError, RecursionError) as e:  # bad JSON (or absurdly nested), or a field that fails
                status = "422"
                metrics.errors.labels("validation").inc()
                return error(422, _validation_message(e))
            seed = body.seed if body.seed is not None else secrets.randbits(63)  # echoed, so it can be replayed
            try:
                feeds = generator.inputs(n=body.n, labels=body.labels, seed=seed)
            except SampleError as e:
                status = "400"
                metrics.errors.labels("bad_input").inc()
                return error(400, str(e).split(" Note:")[0])
            try:
                raw = await asyncio.wait_for(state["batcher"].submit(feeds), config.timeout_s)
            except asyncio.TimeoutError:
                status = "503"
                metrics.errors.labels("timeout").inc()
                return error(503, f"the request took longer than {config.timeout_s:g} s; try fewer images.")
            images = generator.to_uint8(raw)[:, 0]
            metrics.images.inc(len(images))
            response = await encode(images, feeds, body, seed, request.headers.get("accept", "*/*"))
            response.headers["x-gantool-seed"] = str(seed)
            return response
        finally:
            metrics.requests.labels("/v1/sample", status).inc()
            metrics.latency.observe(time.perf_counter() - t0)

    async def encode(images: np.ndarray, feeds: dict[str, np.ndarray], body: SampleRequest, seed: int,
                     accept: str) -> Response:
        if "image/png" in accept:
            ncol = body.ncol or min(8, len(images))
            return Response(await asyncio.to_thread(_png, make_grid(images, ncol)), media_type="image/png")
        if NPY in accept or "application/octet-stream" in accept:
            buf = io.BytesIO()
            np.save(buf, images)
            return Response(buf.getvalue(), media_type=NPY)
        labels = feeds.get("labels")
        return JSONResponse({"shape": list(images.shape), "dtype": "uint8", "seed": seed,
                             "labels": None if labels is None else labels.tolist(),
                             "images_base64": base64.b64encode(images.tobytes()).decode()})

    return BodyLimit(app, config.max_body_bytes)


def _validation_message(e: Exception) -> str:
    if isinstance(e, ValidationError):
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'body'}: {err['msg']}" for err in e.errors()[:5])
        return f"invalid request: {problems}"
    if isinstance(e, RecursionError):
        return "the body nests too deeply to be a sample request"
    return f"the body is not valid JSON ({str(e)[:100]}); send e.g. {{\"labels\": [3, 7], \"seed\": 0}}"


def _png(grid: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(grid, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def serve(model: str, host: str = "127.0.0.1", port: int = 8000, config: ServeConfig = ServeConfig(),
          threads: int | None = None) -> None:
    import uvicorn

    g = Generator.load(model, threads=threads, max_n=config.max_n)
    print(f"gantool serve: {g.spec.arch} ({g.backend.name}) on http://{host}:{port} "
          f"(max batch {config.max_batch}, max wait {config.max_wait_ms:g} ms, max n {config.max_n})", flush=True)
    uvicorn.run(create_app(g, config), host=host, port=port, log_level="warning", timeout_graceful_shutdown=30,
                timeout_keep_alive=5, limit_concurrency=1024)
