"""Breaking changes between two API contracts: two OpenAPI documents, or two route lists.

The rules and their ids are oasdiff's (``oasdiff breaking BASE REVISION``), for the changes a
client of the previous release notices first:

- an operation removed: ``api-removed-without-deprecation`` (``api-path-removed-without-deprecation``
  when its whole path is gone); removing an operation the previous contract marked
  ``deprecated`` is listed, not breaking (``api-deprecated-removed``);
- a request parameter removed (``request-parameter-removed``), a new required one
  (``new-required-request-parameter``), an optional one made required
  (``request-parameter-became-required``);
- a request body made required (``request-body-became-required``), a new required property
  of a JSON request body (``new-required-request-property``), an optional one made required
  (``request-property-became-required``);
- a narrowed response: a success status removed (``response-success-status-removed``), a
  media type of a success response removed (``response-media-type-removed``), a required
  property of a JSON success response removed (``response-required-property-removed``) or its
  type changed (``response-property-type-changed``).

Additions are listed (``endpoint-added``, ``new-optional-request-parameter``,
``response-success-status-added``, ``response-optional-property-removed`` as information).
Path templates are compared with their parameter names left out (``/items/{id}`` is
``/items/{item_id}``), as oasdiff does. Only local ``$ref`` s (``#/...``) are followed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pytest_predeploy.rehearsal.openapi import METHODS, Route, base_path

Kind = Literal["breaking", "addition", "info"]
_PARAMETER = re.compile(r"\{[^/{}]+\}")
#: How deep ``$ref`` s are followed: generated documents nest a few levels; cycles stop here.
_MAX_REF_DEPTH = 16


@dataclass(frozen=True)
class Change:
    """One difference between the previous release's contract and the candidate's."""

    id: str
    kind: Kind
    operation: str  # "GET /items/{item_id}"
    detail: str


def _shape(path: str) -> str:
    return _PARAMETER.sub("{}", path)


def compare_routes(before: list[Route], after: list[Route]) -> list[Change]:
    """Route lists: an operation removed is breaking, an added one is listed."""
    old = {(method, _shape(path)): path for method, path in before}
    new = {(method, _shape(path)): path for method, path in after}
    paths_after = {shape for _, shape in new}
    changes = []
    for key in sorted(old.keys() - new.keys(), key=lambda k: (k[1], k[0])):
        rule = "api-removed-without-deprecation" if key[1] in paths_after else "api-path-removed-without-deprecation"
        changes.append(Change(rule, "breaking", f"{key[0]} {old[key]}", "the operation was removed"))
    for key in sorted(new.keys() - old.keys(), key=lambda k: (k[1], k[0])):
        changes.append(Change("endpoint-added", "addition", f"{key[0]} {new[key]}", "a new operation"))
    return changes


class _Document:
    """An OpenAPI 3 / Swagger 2 document with its local references followed."""

    def __init__(self, document: dict[str, Any], origin: str) -> None:
        self.root = document
        self.base = base_path(document, origin)

    def resolve(self, node: Any, depth: int = 0) -> Any:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < _MAX_REF_DEPTH:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                return {}
            target: Any = self.root
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, dict) else None
            node, depth = target if target is not None else {}, depth + 1
        return node

    def operations(self) -> dict[tuple[str, str], tuple[str, dict[str, Any], dict[str, Any]]]:
        """(METHOD, path shape) -> (path as written, the operation, its path item)."""
        found = {}
        paths = self.root.get("paths")
        for path, item in (paths if isinstance(paths, dict) else {}).items():
            item = self.resolve(item)
            if not isinstance(item, dict):
                continue
            for method in METHODS:
                operation = self.resolve(item.get(method))
                if isinstance(operation, dict):
                    found[(method.upper(), _shape(self.base + str(path)))] = (self.base + str(path), operation, item)
        return found

    def parameters(self, operation: dict[str, Any], item: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        """(in, name) -> parameter; the operation's override its path item's. A Swagger 2
        ``body`` parameter is its request body, not a parameter."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for source in (item.get("parameters"), operation.get("parameters")):
            for raw in source if isinstance(source, list) else []:
                parameter = self.resolve(raw)
                if isinstance(parameter, dict) and parameter.get("in") not in (None, "body"):
                    merged[(str(parameter["in"]), str(parameter.get("name")))] = parameter
        return merged

    def request_body(self, operation: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """(required, the JSON schema of the body) of an operation."""
        body = self.resolve(operation.get("requestBody"))
        if isinstance(body, dict):
            return bool(body.get("required")), self._json_schema(body.get("content"))
        for raw in operation.get("parameters") or []:  # Swagger 2
            parameter = self.resolve(raw)
            if isinstance(parameter, dict) and parameter.get("in") == "body":
                return bool(parameter.get("required")), self._schema(parameter.get("schema"))
        return False, {}

    def responses(self, operation: dict[str, Any]) -> dict[str, tuple[set[str], dict[str, Any]]]:
        """Success status -> (media types, the JSON schema of the answer)."""
        found = {}
        responses = operation.get("responses")
        for status, raw in (responses if isinstance(responses, dict) else {}).items():
            if not str(status).startswith("2"):
                continue
            response = self.resolve(raw)
            response = response if isinstance(response, dict) else {}
            content = response.get("content")
            if isinstance(content, dict):
                found[str(status)] = (set(content), self._json_schema(content))
            else:  # Swagger 2: one schema, media types in 'produces'
                found[str(status)] = (set(), self._schema(response.get("schema")))
        return found

    def _json_schema(self, content: Any) -> dict[str, Any]:
        if not isinstance(content, dict):
            return {}
        for media, value in content.items():
            if "json" in str(media) and isinstance(value, dict):
                return self._schema(value.get("schema"))
        return {}

    def _schema(self, raw: Any) -> dict[str, Any]:
        schema = self.resolve(raw)
        return schema if isinstance(schema, dict) else {}

    def properties(self, schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
        props = schema.get("properties")
        return {str(name): self._schema(value) for name, value in (props if isinstance(props, dict) else {}).items()}


def _required(schema: dict[str, Any]) -> set[str]:
    names = schema.get("required")
    return {str(name) for name in names} if isinstance(names, list) else set()


def compare_documents(before: dict[str, Any], after: dict[str, Any], origin: str) -> list[Change]:
    """The breaking changes and additions from ``before`` (the previous release's document) to
    ``after`` (the candidate's), operations in path order."""
    old, new = _Document(before, f"{origin} (previous)"), _Document(after, origin)
    old_ops, new_ops = old.operations(), new.operations()
    paths_after = {shape for _, shape in new_ops}
    changes: list[Change] = []
    for key in sorted(old_ops.keys() | new_ops.keys(), key=lambda k: (k[1], k[0])):
        if key not in new_ops:
            path, operation, _ = old_ops[key]
            name = f"{key[0]} {path}"
            if operation.get("deprecated"):
                changes.append(Change("api-deprecated-removed", "info", name, "a deprecated operation was removed"))
            else:
                rule = "api-removed-without-deprecation" if key[1] in paths_after else "api-path-removed-without-deprecation"
                changes.append(Change(rule, "breaking", name, "the operation was removed without being deprecated first"))
        elif key not in old_ops:
            changes.append(Change("endpoint-added", "addition", f"{key[0]} {new_ops[key][0]}", "a new operation"))
        else:
            changes += _operation_changes(old, new, old_ops[key], new_ops[key], f"{key[0]} {new_ops[key][0]}")
    return changes


Op = tuple[str, dict[str, Any], dict[str, Any]]


def _operation_changes(old: _Document, new: _Document, before: Op, after: Op, name: str) -> Iterator[Change]:
    _, old_op, old_item = before
    _, new_op, new_item = after
    old_params, new_params = old.parameters(old_op, old_item), new.parameters(new_op, new_item)
    for where, param in sorted(old_params):
        if (where, param) not in new_params and where != "path":
            yield Change("request-parameter-removed", "breaking", name, f"the {where} parameter {param!r} was removed")
    for (where, param), value in sorted(new_params.items()):
        if where == "path":
            continue  # path parameters follow the path template, compared as a shape
        previous = old_params.get((where, param))
        if previous is None:
            if value.get("required"):
                yield Change("new-required-request-parameter", "breaking", name, f"a new required {where} parameter {param!r}")
            else:
                yield Change("new-optional-request-parameter", "addition", name, f"a new optional {where} parameter {param!r}")
        elif value.get("required") and not previous.get("required"):
            yield Change("request-parameter-became-required", "breaking", name, f"the {where} parameter {param!r} became required")
    old_required, old_body = old.request_body(old_op)
    new_required, new_body = new.request_body(new_op)
    if new_required and not old_required:
        yield Change("request-body-became-required", "breaking", name, "the request body became required")
    old_props = old.properties(old_body)
    for prop in sorted(_required(new_body) - _required(old_body)):
        if prop in old_props:
            yield Change("request-property-became-required", "breaking", name, f"the request property {prop!r} became required")
        else:
            yield Change("new-required-request-property", "breaking", name, f"a new required request property {prop!r}")
    yield from _response_changes(old, new, old.responses(old_op), new.responses(new_op), name)


def _response_changes(
    old: _Document, new: _Document, before: dict[str, tuple[set[str], dict[str, Any]]], after: dict[str, tuple[set[str], dict[str, Any]]], name: str
) -> Iterator[Change]:
    for status in sorted(before.keys() - after.keys()):
        yield Change("response-success-status-removed", "breaking", name, f"the success response {status} was removed")
    for status in sorted(after.keys() - before.keys()):
        yield Change("response-success-status-added", "addition", name, f"a new success response {status}")
    for status in sorted(before.keys() & after.keys()):
        (old_media, old_schema), (new_media, new_schema) = before[status], after[status]
        for media in sorted(old_media - new_media):
            yield Change("response-media-type-removed", "breaking", name, f"response {status} no longer answers {media}")
        old_props, new_props = old.properties(old_schema), new.properties(new_schema)
        for prop in sorted(old_props.keys() - new_props.keys()):
            if prop in _required(old_schema):
                yield Change("response-required-property-removed", "breaking", name, f"response {status} no longer has its required property {prop!r}")
            else:
                yield Change("response-optional-property-removed", "info", name, f"response {status} no longer has its optional property {prop!r}")
        for prop in sorted(old_props.keys() & new_props.keys()):
            old_type, new_type = old_props[prop].get("type"), new_props[prop].get("type")
            if old_type and new_type and old_type != new_type:
                yield Change("response-property-type-changed", "breaking", name, f"response {status} property {prop!r} changed type {old_type} -> {new_type}")
