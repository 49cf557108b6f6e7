"""Prometheus metrics of the service, on a private registry (one service per process)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # the *_created series only add noise to a scrape

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
GONE = "499"  # the status label of a request whose client went away before its answer was sent (nginx's code)
UNPARSED = "unknown"  # the endpoint label of a request whose head never arrived whole, or was not HTTP


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("gantool_requests", "HTTP responses by endpoint and the status actually sent; "
                                f'status="{GONE}": the client went away before its answer; endpoint="{UNPARSED}": '
                                "a request head that timed out or was not HTTP; endpoint=\"other\": no such endpoint",
                                ["endpoint", "status"], registry=self.registry)
        self.in_flight = Gauge("gantool_requests_in_flight", "HTTP requests received and not yet answered",
                               ["endpoint"], registry=self.registry)
        self.errors = Counter("gantool_errors", "Requests answered with an error, by kind", ["kind"],
                              registry=self.registry)
        self.latency = Histogram("gantool_request_latency_seconds", "Latency of /v1/sample requests, body read "
                                 "included, whatever their status", buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch = Histogram("gantool_batch_size", "Images per engine call (after micro-batching)",
                               buckets=BATCH_BUCKETS, registry=self.registry)
        self.images = Counter("gantool_images", "Images generated", registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
