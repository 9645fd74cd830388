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

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.fields import StrictModel
from pytest_predeploy.core.httpget import NoAnswer, http_get
from pytest_predeploy.rehearsal.openapi import Route, fetch_routes, read_routes_file

_ROUTE = re.compile(r"^(GET|PUT|POST|DELETE|OPTIONS|HEAD|PATCH|TRACE)\s+(/\S*)$")


class EndpointsUnreadable(Exception):
    """The declared endpoints cannot be read; the message says which source and why."""


class EndpointsConfig(StrictModel):
    """Where one service's declared endpoints come from and how requests to them are counted."""

    openapi: str | None = Field(
        None,
        description="OpenAPI 3 / Swagger 2 document (JSON or YAML): a path the service serves, starting with '/' (e.g. /openapi.json), or a file relative to the config file (e.g. openapi.yaml). Used first when set.",
    )
    routes_path: str | None = Field(
        None,
        description='Path at which the service lists its endpoints as JSON {"routes": [{"method": ..., "path": ...}]}; asked when no OpenAPI document is set, a 404 falls through to `routes`. Empty: smoke.routes_path (default /routes).',
    )
    routes: list[str] = Field(
        default_factory=list,
        description="Declared endpoints as 'METHOD /path/{param}', used when neither an OpenAPI document nor a route-list endpoint gives them.",
    )
    requests: Literal["auto", "counter", "client"] = Field(
        "auto",
        description="How requests are counted: 'counter' from the service's request counter (observability.request_counter), 'client' from the smoke suites' calls through the predeploy_http fixture, 'auto' the counter when the metrics have it, else the client.",
    )

    @field_validator("routes")
    @classmethod
    def _route_lines(cls, routes: list[str]) -> list[str]:
        for route in routes:
            if not _ROUTE.match(route.strip()):
                raise ValueError(f"{route[:80]!r} is not 'METHOD /path' (e.g. 'GET /items/{{id}}')")
        return routes

    @field_validator("openapi", "routes_path")
    @classmethod
    def _not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("empty; leave the field out or set it to null")
        return value

    @field_validator("routes_path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value[:80]!r}")
        return value


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
        data = json.loads(response.body)
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
