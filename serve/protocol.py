"""uvicorn's h11 protocol with two things uvicorn lacks (checked against uvicorn 0.54: its only timeout
is timeout_keep_alive, armed after a response, so nothing bounds a request line and headers that
stop arriving, and on shutdown it closes every idle keep-alive connection at once).

- A header deadline: a connection must deliver a whole request head within `header_timeout` of
  opening, or of its previous answer. A partial head gets a 408 and the connection is closed; one
  that sent nothing is just closed (a 408 there could be read as the answer to a request that
  crossed it on the wire).
- A drain grace on shutdown: an idle keep-alive connection is not closed at once, since a request may
  already be on its way (closing then resets it unanswered). It stays open for `drain_grace`
  seconds; a request arriving then is answered (with `Connection: close`, see guard.py), then closed.

Its own answers (the 408 above, and the 400 for a request that is not HTTP, which uvicorn sends as
plain text) are JSON like the app's, and reported to `on_answer` so that /metrics counts them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Callable

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class GuardedH11Protocol(H11Protocol):
    """One per connection (see the module docstring); configured() sets its class-level settings."""

    header_timeout: float = 10.0
    drain_grace: float = 2.0
    on_answer: Callable[[int], None] = staticmethod(lambda status: None)  # counts our own answers (metrics)

    _header_timer: asyncio.TimerHandle | None = None
    _drain_timer: asyncio.TimerHandle | None = None

    @classmethod
    def configured(cls, header_timeout: float, drain_grace: float,
                   on_answer: Callable[[int], None]) -> type["GuardedH11Protocol"]:
        """A subclass with these settings: uvicorn builds one protocol object per connection from a class."""
        return type(cls.__name__, (cls,), {"header_timeout": header_timeout, "drain_grace": drain_grace,
                                           "on_answer": staticmethod(on_answer)})

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._header_timer, self._drain_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self._header_timer is not None and self.conn.their_state is not h11.IDLE:  # the head is in
            self._header_timer.cancel()
            self._header_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # the next request's head has the same deadline

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0]:  # part of a request head: say why the connection closes
            self.on_answer(408)  # (h11 cannot send a response before it has a request: written as bytes)
            body = json.dumps({"error": f"the request headers did not arrive within {self.header_timeout:g} s"})
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                 b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body.encode()))
        try:
            self.conn.send(h11.ConnectionClosed())
        except h11.LocalProtocolError:
            pass
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """What uvicorn answers a request h11 cannot parse (malformed, or a head over h11's 16 KiB), in JSON."""
        self.on_answer(400)
        body = json.dumps({"error": "not a valid HTTP/1.1 request (malformed, or its head is too large)"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
                   (b"connection", b"close")]
        self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request")))
        self.transport.write(self.conn.send(h11.Data(data=body)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()

    def shutdown(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            return super().shutdown()  # a request in flight: its answer goes out, then the connection closes
        if self._drain_timer is None and not self.transport.is_closing():
            self._drain_timer = self.loop.call_later(self.drain_grace, self._drain_over)

    def _drain_over(self) -> None:
        self._drain_timer = None
        if not self.transport.is_closing():
            super().shutdown()  # idle: close; a request that came meanwhile: close after its answer
