"""Where a service's declared endpoints come from, and how requests to them are counted.

Declared endpoints (the denominator of smoke coverage) come from, in order:

1. an OpenAPI 3 / Swagger 2 document: a path the service serves (``/openapi.json``) or a file
   in the repository (``openapi.yaml``, relative to the configuration file);
2. the service's route-list endpoint (``routes_path``, by default ``smoke.routes_path``,
   answering ``{"routes": [{"method", "path"}]}``);
3. the list in the configuration (``routes: ["GET /items", "GET /items/{id}"]``).

A source that is configured but cannot be read is "no data" naming it, never a silent fallback
to the next one; only the route-list endpoint answering 404 falls through to the configured list
(it is asked by default, and most services have none).

Requests (the numerator) are counted from the service's own request counter when its metrics
expose one, else from the smoke run's own HTTP calls through the recording client
(:mod:`pytest_predeploy.rehearsal.requestlog`); ``requests`` picks one explicitly.
"""

from __future__ import annotations

from pathlib import Path

from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.httpget import NoAnswer, http_get
from pytest_predeploy.core.nesting import json_loads
from pytest_predeploy.rehearsal.openapi import Route, fetch_routes, read_routes_file
from pytest_predeploy.targets.settings import ROUTE as _ROUTE
from pytest_predeploy.targets.settings import EndpointsConfig


class EndpointsUnreadable(Exception):
    """The declared endpoints cannot be read; the message says which source and why."""


def configured_routes(config: EndpointsConfig) -> list[Route]:
    routes = set()
    for line in config.routes:
        match = _ROUTE.match(line.strip())
        assert match is not None  # validated on load
        routes.add((match.group(1), match.group(2)))
    return sorted(routes, key=lambda r: (r[1], r[0]))


def _route_list(url: str, timeout: float) -> list[Route] | None:
    """The route-list endpoint's routes, or None when it answers 404 (the service has none)."""
    try:
        response = http_get(url, timeout)
    except NoAnswer as exc:
        raise EndpointsUnreadable(f"{url} {exc}") from None
    if response.status == 404:
        return None
    if response.status != 200:
        raise EndpointsUnreadable(f"{url} answered HTTP {response.status}")
    try:
        data = json_loads(response.body)
    except ValueError:
        raise EndpointsUnreadable(f"{url} did not answer JSON") from None
    try:
        return sorted({(str(entry["method"]).upper(), str(entry["path"])) for entry in data["routes"]}, key=lambda r: (r[1], r[0]))
    except (TypeError, KeyError) as exc:
        raise EndpointsUnreadable(f'{url} is not a route list {{"routes": [{{"method", "path"}}]}} ({exc.__class__.__name__}: {exc})') from None


def declared_endpoints(config: EndpointsConfig, base_url: str, base_dir: Path, timeout: float, default_routes_path: str = "/routes") -> tuple[list[Route], str]:
    """The service's declared endpoints and where they came from (for the report); raises
    :class:`EndpointsUnreadable` naming the source that could not be read."""
    base = base_url.rstrip("/")
    routes_path = config.routes_path or default_routes_path
    if config.openapi is not None:
        try:
            if config.openapi.startswith("/"):
                return fetch_routes(base + config.openapi, timeout), f"OpenAPI document {config.openapi}"
            return read_routes_file(base_dir / config.openapi), f"OpenAPI document {config.openapi}"
        except ConfigError as exc:
            raise EndpointsUnreadable(str(exc)) from None
    listed = _route_list(base + routes_path, timeout)
    if listed is not None:
        return listed, f"route list {routes_path}"
    if not config.routes:
        raise EndpointsUnreadable(
            f"{base}{routes_path} answered 404 and no other source is set: set the service's endpoints.openapi "
            "(a document the service serves or a file) or list its endpoints in endpoints.routes"
        )
    return configured_routes(config), "routes listed in the configuration"
