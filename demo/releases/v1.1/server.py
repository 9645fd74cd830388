"""The demo shop service: one small HTTP server that runs as the ``api`` or the ``worker`` role.

Release v1.1 (the release in production; v1.2 is the candidate).

It is what the embedded local staging target deploys, one folder per release. What the target
decides comes from the release's own manifest (``release-manifest.json`` in the working folder,
written by the target when it builds the release): the service name, the release tag it reports
on ``/version`` and, for rehearsal tests, an injected fault (``crash``: exit at start;
``unhealthy``: serve but never report healthy). ``DEMO_WARMUP_SECONDS`` in the environment makes ``/healthz`` answer 503
for that long after start, like a real service warming caches.

Endpoints (both roles): ``GET /healthz``, ``GET /version``, ``GET /metrics`` (Prometheus text),
``GET /routes`` (the business endpoints this role declares, used for smoke coverage).
Requests to ``/metrics`` itself are not counted, so scraping does not skew the figures.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import selectors
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path
from typing import Any

Response = tuple[int, Any]
Handler = Callable[[dict[str, str], Any], Response]

PRODUCTS = {
    1: {"id": 1, "name": "Espresso beans 1 kg", "price": 24.5},
    2: {"id": 2, "name": "Pour-over kettle", "price": 59.0},
    3: {"id": 3, "name": "Burr grinder", "price": 129.0},
}


class NotFound(Exception):
    pass


class BadRequest(Exception):
    pass


class Shop:
    """The business state of one process (in memory: staging data is reset by each deploy)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.orders: dict[int, dict[str, Any]] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.ids = count(1)

    def list_products(self, params: dict[str, str], body: Any) -> Response:
        return 200, {"products": list(PRODUCTS.values())}

    def get_product(self, params: dict[str, str], body: Any) -> Response:
        product = PRODUCTS.get(_int_id(params["id"]))
        if product is None:
            raise NotFound(f"no product {params['id']}")
        return 200, product

    def create_order(self, params: dict[str, str], body: Any) -> Response:
        if not isinstance(body, dict):
            raise BadRequest('expected a JSON object {"product_id": int, "quantity": int}')
        product_id, quantity = body.get("product_id"), body.get("quantity")
        if type(product_id) is not int or type(quantity) is not int or quantity < 1:
            raise BadRequest("product_id must be an integer and quantity a positive integer")
        if product_id not in PRODUCTS:
            raise NotFound(f"no product {product_id}")
        with self.lock:
            order = {"id": next(self.ids), "product_id": product_id, "quantity": quantity, "status": "placed"}
            self.orders[order["id"]] = order
        return 201, order

    def get_order(self, params: dict[str, str], body: Any) -> Response:
        order = self.orders.get(_int_id(params["id"]))
        if order is None:
            raise NotFound(f"no order {params['id']}")
        return 200, order

    def create_job(self, params: dict[str, str], body: Any) -> Response:
        with self.lock:
            job = {"id": next(self.ids), "status": "done", "payload": body}
            self.jobs[job["id"]] = job
        return 202, {"id": job["id"]}

    def get_job(self, params: dict[str, str], body: Any) -> Response:
        job = self.jobs.get(_int_id(params["id"]))
        if job is None:
            raise NotFound(f"no job {params['id']}")
        return 200, {"id": job["id"], "status": job["status"]}


def _int_id(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise NotFound(f"no item {raw!r}") from None


def business_routes(shop: Shop, role: str) -> list[tuple[str, str, Handler]]:
    if role == "api":
        return [
            ("GET", "/api/products", shop.list_products),
            ("GET", "/api/products/{id}", shop.get_product),
            ("POST", "/api/orders", shop.create_order),
            ("GET", "/api/orders/{id}", shop.get_order),
        ]
    return [("POST", "/jobs", shop.create_job), ("GET", "/jobs/{id}", shop.get_job)]


#: Upper bounds of the request-duration histogram (prometheus_client's default buckets).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, float("inf"))


class Metrics:
    """Request counts and durations, served in the Prometheus text format.

    Kept as plain numbers and rendered with prometheus_client only when ``/metrics`` is scraped:
    importing it costs each start ~20 ms of CPU, which ten services starting at once on a small
    staging host compete for, and most processes of a rehearsal are never scraped."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], list[float]] = {}  # labels -> [count, created]
        self.latency: dict[tuple[str, str], tuple[list[int], list[float]]] = {}  # labels -> (per bucket, [sum, created])

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        now = time.time()
        with self.lock:
            self.requests.setdefault((method, route, str(status)), [0, now])[0] += 1
            counts, totals = self.latency.setdefault((method, route), ([0] * len(LATENCY_BUCKETS), [0.0, now]))
            counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            totals[0] += seconds

    def collect(self) -> Iterator[Any]:
        """The prometheus_client collector interface (``generate_latest`` calls it)."""
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
        from prometheus_client.samples import Sample
        from prometheus_client.utils import floatToGoString

        requests = CounterMetricFamily("http_requests", "HTTP requests served.", labels=["method", "route", "status"])
        latency = HistogramMetricFamily("http_request_duration_seconds", "Time to serve an HTTP request.", labels=["method", "route"])
        with self.lock:
            for labels, (count, created) in self.requests.items():
                requests.add_metric(labels, count, created=created)
            for (method, route), (counts, (total, created)) in self.latency.items():
                cumulative = [sum(counts[: i + 1]) for i in range(len(counts))]
                latency.add_metric([method, route], [(floatToGoString(b), float(c)) for b, c in zip(LATENCY_BUCKETS, cumulative, strict=False)], total)
                latency.samples.append(Sample(latency.name + "_created", {"method": method, "route": route}, created))
        yield requests
        yield latency

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self), CONTENT_TYPE_LATEST


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


class App:
    """Routing, metrics and the operational endpoints around the role's business routes."""

    def __init__(self, service: str, release: str, role: str, fault: str | None, warmup: float) -> None:
        self.service, self.release, self.fault = service, release, fault
        self.ready_at = time.monotonic() + warmup
        self.metrics = Metrics()
        self.business = business_routes(Shop(), role)
        self.routes: list[tuple[str, str, re.Pattern[str], Handler]] = [
            ("GET", "/healthz", _pattern("/healthz"), self.healthz),
            ("GET", "/version", _pattern("/version"), self.version),
            ("GET", "/routes", _pattern("/routes"), self.list_routes),
        ]
        self.routes += [(method, path, _pattern(path), handler) for method, path, handler in self.business]

    def healthz(self, params: dict[str, str], body: Any) -> Response:
        if self.fault == "unhealthy":
            return 503, {"status": "failing", "service": self.service, "release": self.release, "reason": "injected fault: unhealthy"}
        if time.monotonic() < self.ready_at:
            return 503, {"status": "starting", "service": self.service, "release": self.release}
        return 200, {"status": "ok", "service": self.service, "release": self.release}

    def version(self, params: dict[str, str], body: Any) -> Response:
        return 200, {"service": self.service, "release": self.release}

    def list_routes(self, params: dict[str, str], body: Any) -> Response:
        return 200, {"service": self.service, "routes": [{"method": m, "path": p} for m, p, _ in self.business]}

    def dispatch(self, method: str, path: str, body: Any) -> tuple[str, Response]:
        """Returns the route template (the metrics label) and the response."""
        path_exists = False
        for route_method, template, pattern, handler in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            path_exists = True
            if route_method == method:
                try:
                    return template, handler(match.groupdict(), body)
                except NotFound as exc:
                    return template, (404, {"error": str(exc)})
                except BadRequest as exc:
                    return template, (400, {"error": str(exc)})
        if path_exists:
            return "unmatched", (405, {"error": f"{method} not allowed on {path}"})
        return "unmatched", (404, {"error": f"no route {path}"})


class RequestHandler(BaseHTTPRequestHandler):
    app: App
    server_version = "demo-shop"

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        if method == "GET" and path == "/metrics":
            self._send(200, *self.app.metrics.exposition())
            return
        started = time.perf_counter()
        try:
            body = self._read_json()
        except ValueError as exc:
            route, (status, payload) = "unmatched", (400, {"error": f"invalid JSON body: {exc}"})
        else:
            route, (status, payload) = self.app.dispatch(method, path, body)
        data = json.dumps(payload).encode()
        # Counted before the answer goes out: a client that scrapes /metrics right after its
        # request must find it counted (smoke coverage and the tests rely on that).
        self.app.metrics.observe(method, route, status, time.perf_counter() - started)
        self._send(status, data, "application/json")

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw.strip() else None

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request in the service log, with the release, for post-mortems.
        sys.stderr.write(f"{self.log_date_time_string()} {self.app.service}@{self.app.release} {format % args}\n")


class Server(ThreadingHTTPServer):
    # Request threads are joined on close, so a graceful stop lets in-flight requests finish.
    daemon_threads = False

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._stopping = False
        self._wake_read, self._wake_write = os.pipe()

    def stop_accepting(self) -> None:
        """Safe in a signal handler: the loop wakes at once (serve_forever would notice only at
        its next poll, making every restart of the service wait for it)."""
        self._stopping = True
        os.write(self._wake_write, b"\0")

    def serve_until_stopped(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while not self._stopping:
                ready = selector.select()
                if not self._stopping and any(key.fileobj is self for key, _ in ready):
                    self.handle_request()

    def server_close(self) -> None:
        super().server_close()
        os.close(self._wake_read)
        os.close(self._wake_write)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["api", "worker"], required=True)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="where to write the bound port once listening")
    parser.add_argument("--manifest", type=Path, default=Path("release-manifest.json"))
    args = parser.parse_args(argv)

    manifest = json.loads(args.manifest.read_text())
    fault = manifest.get("fault")
    if fault == "crash":
        print(f"{manifest['service']}@{manifest['release']}: injected fault: crash at start", file=sys.stderr)
        return 1
    warmup = float(os.environ.get("DEMO_WARMUP_SECONDS", "0"))
    RequestHandler.app = App(manifest["service"], manifest["release"], args.role, fault, warmup)
    server = Server(("127.0.0.1", args.port), RequestHandler)
    # Graceful stop: SIGTERM stops accepting; server_close then waits for in-flight requests.
    signal.signal(signal.SIGTERM, lambda *_: server.stop_accepting())
    port = server.server_address[1]
    if args.port_file:
        _write_atomic(args.port_file, f"{port}\n")
    print(f"{manifest['service']}@{manifest['release']} listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_until_stopped()
    finally:
        server.server_close()
    print(f"{manifest['service']}@{manifest['release']} stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
