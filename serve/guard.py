"""The outermost ASGI layer: it reads each request body itself, so that a body too large (413), too
slow (408) or cut off by the client is answered, or dropped, before the app runs, with nothing
raised through the app after it may have started a response. It counts every response under the
status it really sent, answers JSON when the app fails, and notices a client that goes away.

Reading the body here costs nothing extra: the app reads it whole anyway, and it is small (the limit).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Awaitable, Callable

from gantool.serve.metrics import GONE, Metrics

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DRAIN_BYTES = 1 << 20  # read (and drop) up to this much of a refused body, so the client sees the 413, not a reset
CLOSE = (b"connection", b"close")


class _Refused(Exception):
    """A request answered with an error before the app runs; close: the connection cannot carry another."""

    def __init__(self, status: int, kind: str, message: str, close: bool) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.close = status, kind, message, close
        self.decided = False


class _Gone(Exception):
    """The client disconnected before its request was whole."""


class _Exchange:
    """One request/response: what was sent (status, whether complete) and whether the client left."""

    def __init__(self, send: Send, draining: Callable[[], bool]) -> None:
        self._send, self.draining = send, draining
        self.status: int | None = None
        self.complete = False
        self.gone = False
        self.finished = asyncio.Event()  # the answer is out, or the client left: the app's receive() says disconnect

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self.draining():  # shutting down: this is the connection's last answer, and it says so
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"connection" for k, _ in headers):
                    message = {**message, "headers": [*headers, CLOSE]}
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True  # before the await: the server's receive() may wake up on it
        await self._send(message)
        if self.complete:
            self.finished.set()

    async def send_json(self, status: int, message: str, close: bool = False) -> None:
        body = json.dumps({"error": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await self.send({"type": "http.response.start", "status": status, "headers": headers + [CLOSE] * close})
        await self.send({"type": "http.response.body", "body": body})


class Guard:
    """Pure ASGI middleware around the FastAPI app (see the module docstring)."""

    def __init__(self, app: Any, metrics: Metrics, endpoints: set[str], max_body: int, read_timeout: float,
                 max_in_flight: int, draining: Callable[[], bool] = lambda: False) -> None:
        self.app, self.metrics, self.endpoints = app, metrics, endpoints
        self.max_body, self.read_timeout, self.max_in_flight = max_body, read_timeout, max_in_flight
        self.draining = draining
        self.in_flight = 0
        self._gauges: dict[str, Any] = {}  # labelled children, cached: labels() costs ~4 us a call
        self._counters: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan
            return await self.app(scope, receive, send)
        endpoint = scope["path"] if scope["path"] in self.endpoints else "other"  # bounded label values
        exchange = _Exchange(send, self.draining)
        t0 = time.perf_counter()
        self.in_flight += 1
        gauge = self._gauges.get(endpoint)
        if gauge is None:
            gauge = self._gauges[endpoint] = self.metrics.in_flight.labels(endpoint)
        gauge.inc()
        try:
            await self._handle(scope, receive, exchange)
        finally:
            self.in_flight -= 1
            gauge.dec()
            status = GONE if exchange.gone and not exchange.complete else str(exchange.status or GONE)
            counter = self._counters.get((endpoint, status))
            if counter is None:
                counter = self._counters[endpoint, status] = self.metrics.requests.labels(endpoint, status)
            counter.inc()
            if endpoint == "/v1/sample":
                self.metrics.latency.observe(time.perf_counter() - t0)

    async def _handle(self, scope: Scope, receive: Receive, exchange: _Exchange) -> None:
        client = scope.get("client")
        what = f"{scope['method']} {scope['path']}" + (f" from {client[0]}:{client[1]}" if client else "")
        if self.in_flight > self.max_in_flight:
            self.metrics.errors.labels("busy").inc()
            return await exchange.send_json(503, f"the server has {self.max_in_flight} requests in flight; "
                                                 "retry shortly", close=True)
        try:
            body = await self._read_body(scope, receive)
        except _Gone:
            exchange.gone = True
            self.metrics.errors.labels("disconnect").inc()
            log.info("%s: the client went away before sending its whole request", what)
            return
        except _Refused as r:
            self.metrics.errors.labels(r.kind).inc()
            return await exchange.send_json(r.status, r.message, close=r.close)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await exchange.finished.wait()
            return {"type": "http.disconnect"}

        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        watch: list[asyncio.Task] = []  # started only once the app waits for something: /healthz never does
        start_watch = loop.call_soon(lambda: watch.append(loop.create_task(self._watch(receive, exchange, task))))
        error: BaseException | None = None
        try:
            await self.app(scope, replay, exchange.send)
        except asyncio.CancelledError:
            if not exchange.gone:  # not ours: the server gave up on the request (its graceful-shutdown timeout)
                if exchange.status is None:
                    await exchange.send_json(503, "the server shut down before this request finished", close=True)
                log.warning("%s: cancelled by the server's shutdown before it finished", what)
                return
            _uncancel(task)  # ours: the client went away, nobody is waiting for the answer
        except Exception as e:  # FastAPI has answered it (our JSON 500 handler) unless the response had started
            error = e
        finally:
            start_watch.cancel()
            for w in watch:
                w.cancel()
        if exchange.gone:
            self.metrics.errors.labels("disconnect").inc()
            log.info("%s: the client went away before its answer", what)
            return
        if error is not None:
            log.error("%s failed: %s", what, error, exc_info=error)
        if exchange.status is None:
            await exchange.send_json(500, "internal error: the server gave no answer; the server log has the "
                                          "details", close=True)
        elif not exchange.complete:
            log.error("%s: the response was cut off after it started", what)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body, which must arrive within read_timeout and fit in max_body. One timer for
        the whole body (a wait_for per receive() costs a task each on Python < 3.12)."""
        headers = dict(scope.get("headers") or [])
        if b"transfer-encoding" not in headers and headers.get(b"content-length", b"0") == b"0":
            return b""  # no body (GET): nothing to wait for
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        too_large = _Refused(413, "body_too_large", f"request body is larger than {self.max_body} bytes", close=True)
        timer = asyncio.get_running_loop().call_later(self.read_timeout, expire)
        try:
            return await self._read_body_until_expired(headers, receive, too_large)
        except asyncio.CancelledError:
            if not expired:
                raise
            _uncancel(task)
            if too_large.decided:  # the time ran out while dropping a refused body: still a 413, and close
                too_large.close = True
                raise too_large from None
            raise _Refused(408, "read_timeout", f"the request body did not arrive within {self.read_timeout:g} s",
                           close=True) from None
        finally:
            timer.cancel()

    async def _read_body_until_expired(self, headers: dict[bytes, bytes], receive: Receive,
                                       too_large: _Refused) -> bytes:
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            too_large.decided = True
            if int(declared) > DRAIN_BYTES or headers.get(b"expect", b"").lower() == b"100-continue":
                raise too_large  # (after Expect: 100-continue the body was not sent: nothing to drop)
            too_large.close = not await self._drain(receive, 0)
            raise too_large
        chunks, size = [], 0
        while True:
            message = await self._next(receive)
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if size > self.max_body:
                too_large.decided = True
                too_large.close = more and not await self._drain(receive, size)
                raise too_large
            chunks.append(chunk)
            if not more:
                return b"".join(chunks)

    @staticmethod
    async def _next(receive: Receive) -> Message:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone()
        return message

    async def _drain(self, receive: Receive, seen: int) -> bool:
        """Read and drop the rest of a refused body (up to DRAIN_BYTES, within the body's deadline):
        True if it ended (the connection can carry the next request), False if not (close it)."""
        while seen <= DRAIN_BYTES:
            message = await self._next(receive)
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
        return False

    @staticmethod
    async def _watch(receive: Receive, exchange: _Exchange, task: asyncio.Task) -> None:
        """The body is read: the server's receive() now returns only when the client leaves (then the
        request's task is cancelled), or when the answer is complete."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                exchange.finished.set()
                if not exchange.complete:
                    exchange.gone = True
                    task.cancel()
                return


def _uncancel(task: asyncio.Task) -> None:
    """Forget a cancellation this module made and handled (Python 3.11+ counts them)."""
    if hasattr(task, "uncancel"):
        task.uncancel()
