"""Declared endpoints from an OpenAPI 3 or Swagger 2 document (JSON or YAML).

Smoke coverage is "endpoints exercised over endpoints declared". Most real services declare
their endpoints in an OpenAPI document (served by the service, or a file in the repository)
rather than on a project-specific ``/routes`` endpoint, so this module turns such a document into
the same (method, path template) pairs, and matches concrete request paths back to templates so
requests made by the smoke suite itself can be counted per endpoint.

Path templates keep their parameters as written (``/items/{item_id}``). A Swagger 2 ``basePath``
and the path of an OpenAPI 3 document's first server (when it is a plain path such as ``/v1`` or
``https://host/v1``) prefix every path, since that is the path requests actually carry.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.httpget import NoAnswer, http_get
from pytest_predeploy.core.yamlfile import parse_json, parse_yaml, read_text_file

#: The operations an OpenAPI path item may hold (other keys, such as ``parameters``, are not
#: operations).
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

#: Generated documents of large services reach a few MiB; anything bigger is not an API description.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024

Route = tuple[str, str]  # (METHOD, path template)


class OpenApiError(ConfigError):
    """The document cannot be read or is not an OpenAPI/Swagger document: the message names it."""


def parse_document(text: str, origin: str) -> Any:
    """JSON when it looks like JSON (faster, and its errors name the line), YAML otherwise."""
    if text.lstrip().startswith("{"):
        return parse_json(text, origin)
    data, _ = parse_yaml(text, origin)
    return data


def base_path(document: dict[str, Any], origin: str) -> str:
    if "swagger" in document:
        base = document.get("basePath", "")
        if not isinstance(base, str):
            raise OpenApiError(f"{origin}: field 'basePath' must be a string")
        return base.rstrip("/")
    servers = document.get("servers")
    if isinstance(servers, list) and servers and isinstance(servers[0], dict):
        url = servers[0].get("url")
        # A server URL with variables ({region}) names a host we cannot know; leave the paths alone.
        if isinstance(url, str) and "{" not in url:
            return urllib.parse.urlsplit(url).path.rstrip("/")
    return ""


def routes_from_document(document: Any, origin: str) -> list[Route]:
    """The (METHOD, path template) pairs a parsed document declares, sorted; raises
    :class:`OpenApiError` naming ``origin`` and the field when it is not an OpenAPI 3 or
    Swagger 2 document."""
    if not isinstance(document, dict):
        raise OpenApiError(f"{origin}: not an OpenAPI document (expected a mapping with 'openapi' or 'swagger' and 'paths')")
    version = document.get("openapi", document.get("swagger"))
    if version is None:
        raise OpenApiError(f"{origin}: not an OpenAPI document (no 'openapi' or 'swagger' field)")
    if not str(version).startswith(("2", "3")):
        raise OpenApiError(f"{origin}: field 'openapi': version {str(version)[:20]!r} is not supported (OpenAPI 3.x or Swagger 2.0)")
    paths = document.get("paths")
    if not isinstance(paths, dict):
        raise OpenApiError(f"{origin}: field 'paths' is missing or not a mapping")
    base = base_path(document, origin)
    routes: set[Route] = set()
    for path, item in paths.items():
        if not isinstance(path, str) or not path.startswith("/"):
            raise OpenApiError(f"{origin}: field 'paths': {str(path)[:80]!r} does not start with '/'")
        if not isinstance(item, dict):
            raise OpenApiError(f"{origin}: field 'paths.{path}' is not a mapping of operations")
        for method in METHODS:
            if method in item:
                routes.add((method.upper(), base + path))
    return sorted(routes, key=lambda route: (route[1], route[0]))


def read_routes_file(path: Path) -> list[Route]:
    """Routes from an OpenAPI document in the repository."""
    text = read_text_file(path, "OpenAPI document", MAX_DOCUMENT_BYTES)
    return routes_from_document(parse_document(text, str(path)), str(path))


def fetch_routes(url: str, timeout: float) -> list[Route]:
    """Routes from an OpenAPI document the service serves (e.g. ``http://host:port/openapi.json``)."""
    document = fetch_document(url, timeout)
    return routes_from_document(document, url)


def fetch_document(url: str, timeout: float) -> dict[str, Any]:
    """The OpenAPI document the service serves at ``url``, parsed and checked to be one."""
    try:
        response = http_get(url, timeout, max_bytes=MAX_DOCUMENT_BYTES)
    except NoAnswer as exc:
        raise OpenApiError(f"{url} {exc}") from None
    if response.status != 200:
        raise OpenApiError(f"{url} answered HTTP {response.status} (is the OpenAPI path right?)")
    if response.truncated:
        raise OpenApiError(f"{url}: the document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
    try:
        text = response.body.decode("utf-8")
    except UnicodeDecodeError:
        raise OpenApiError(f"{url}: the document is not UTF-8 text") from None
    document = parse_document(text, url)
    routes_from_document(document, url)  # raises naming the field when it is not an OpenAPI document
    return dict(document)


_PARAMETER = re.compile(r"\{[^/{}]+\}")


@dataclass(frozen=True)
class RouteTable:
    """Matches concrete requests (``GET /items/42?x=1``) to declared templates
    (``GET /items/{item_id}``). A literal segment beats a parameter, so ``/items/new`` matches
    ``/items/new`` when both it and ``/items/{id}`` are declared."""

    routes: tuple[Route, ...]

    @classmethod
    def of(cls, routes: Iterable[Route]) -> RouteTable:
        # Fewest parameters first: the most specific template wins.
        ordered = sorted(set(routes), key=lambda r: (len(_PARAMETER.findall(r[1])), r[1], r[0]))
        return cls(tuple(ordered))

    def match(self, method: str, path: str) -> Route | None:
        """The declared route a request hits, or None when it hits none."""
        path = urllib.parse.urlsplit(path).path or "/"
        method = method.upper()
        for route in self.routes:
            if route[0] == method and _pattern(route[1]).fullmatch(path):
                return route
        return None


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(template: str) -> re.Pattern[str]:
    pattern = _PATTERNS.get(template)
    if pattern is None:
        parts = _PARAMETER.split(template)
        pattern = re.compile("[^/]+".join(re.escape(part) for part in parts) + "/?")
        _PATTERNS[template] = pattern
    return pattern
