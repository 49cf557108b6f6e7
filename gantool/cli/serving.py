"""`gantool serve`: the HTTP service (the serve extra)."""

from __future__ import annotations

import click

from gantool.cli.app import cli
from gantool.cli.sampling import PRECISION_HELP, tune_progress
from gantool.errors import GantoolError
from gantool.runtime.generator import ENGINES
from gantool.runtime.variants import RUNTIME_PRECISIONS


@cli.command("serve")
@click.option("--model", required=True, metavar="FILE|NAME", help="a .onnx/.ort/.plan file or a zoo name")
@click.option("--engine", type=click.Choice(ENGINES), default="auto", show_default=True,
              help="the runtime engine that runs the generator")
@click.option("--host", default="127.0.0.1", show_default=True, help="loopback by default; 0.0.0.0 exposes it")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--max-batch", type=click.IntRange(min=1), default=256, show_default=True,
              help="images per merged engine call")
@click.option("--max-wait-ms", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="how long a request may wait for others to join its batch")
@click.option("--max-n", type=click.IntRange(min=1), default=1024, show_default=True, help="images per request")
@click.option("--timeout-s", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="how long a request may wait for the engine (then 503)")
@click.option("--read-timeout-s", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="how long a client may take to send its request headers, and its body (then 408)")
@click.option("--max-body-bytes", type=click.IntRange(min=64), default=65536, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="engine threads [default: all cores]")
@click.option("--precision", type=click.Choice(RUNTIME_PRECISIONS), default="fp32", show_default=True,
              help=PRECISION_HELP)
def serve_cmd(model: str, engine: str, host: str, port: int, max_batch: int, max_wait_ms: float, max_n: int,
              timeout_s: float, read_timeout_s: float, max_body_bytes: int, threads: int | None,
              precision: str) -> None:
    """Serve sampling over HTTP with micro-batching (the serve extra)."""
    try:
        from gantool.serve.app import ServeConfig, serve
    except ImportError as e:
        raise GantoolError(f"`gantool serve` needs the serve extra ({e.name} is missing).",
                           note='pip install "gantool[serve]".') from None
    config = ServeConfig(max_batch=max_batch, max_wait_ms=max_wait_ms, max_n=max_n, timeout_s=timeout_s,
                         max_body_bytes=max_body_bytes, read_timeout_s=read_timeout_s)
    serve(model, host, port, config, threads=threads, engine=engine, precision=precision,
          progress=tune_progress())
