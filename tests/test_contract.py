"""The API contract check of Gate 2: the candidate's served contract against the previous
release's, with oasdiff's rule ids, waivers with an owner and an expiry, additions listed."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from pytest_predeploy.api import ApiContractReport, contract_problems
from pytest_predeploy.config import load_config
from pytest_predeploy.rehearsal.contract import ContractConfig, ContractWaiver, contract_report, read_contract, read_contracts
from pytest_predeploy.rehearsal.contractdiff import compare_documents, compare_routes
from pytest_predeploy.targets.settings import EndpointsConfig
from tests.httpfiles import running, serve

NOW = datetime(2026, 12, 7, tzinfo=UTC)

#: The shape FastAPI serves at /openapi.json: operations referring to components/schemas.
V1: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "shop", "version": "1.0"},
    "paths": {
        "/items": {
            "get": {
                "parameters": [{"name": "limit", "in": "query", "required": False, "schema": {"type": "integer"}}],
                "responses": {"200": {"content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}}}}},
            },
            "post": {
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewItem"}}}},
                "responses": {"201": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}},
            },
        },
        "/items/{item_id}": {
            "parameters": [{"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "get": {"responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}}},
            "delete": {"responses": {"204": {"description": "gone"}}},
        },
        "/export": {"get": {"responses": {"200": {"content": {"text/csv": {}}}}}},
    },
    "components": {
        "schemas": {
            "Item": {
                "type": "object",
                "required": ["id", "name"],
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "note": {"type": "string"}},
            },
            "NewItem": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "colour": {"type": "string"}}},
        }
    },
}


def changed(edit: Any) -> dict[str, Any]:
    document = copy.deepcopy(V1)
    edit(document)
    return document


def rules(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c.id, c.kind, c.operation) for c in compare_documents(before, after, "/openapi.json")]


def test_the_same_contract_has_no_change() -> None:
    assert rules(V1, copy.deepcopy(V1)) == []


def test_a_removed_operation_and_a_removed_path_are_breaking() -> None:
    def edit(doc: dict[str, Any]) -> None:
        del doc["paths"]["/items/{item_id}"]["delete"]
        del doc["paths"]["/export"]

    assert rules(V1, changed(edit)) == [
        ("api-path-removed-without-deprecation", "breaking", "GET /export"),
        ("api-removed-without-deprecation", "breaking", "DELETE /items/{item_id}"),
    ]


def test_removing_a_deprecated_operation_is_listed_not_breaking() -> None:
    before = changed(lambda doc: doc["paths"]["/export"]["get"].update(deprecated=True))
    assert rules(before, changed(lambda doc: doc["paths"].pop("/export"))) == [("api-deprecated-removed", "info", "GET /export")]


def test_parameters_removed_newly_required_or_made_required_are_breaking_and_an_optional_one_is_an_addition() -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["paths"]["/items"]["get"]["parameters"] = [
            {"name": "page", "in": "query", "required": True},
            {"name": "trace", "in": "header", "required": False},
        ]
        doc["paths"]["/items/{item_id}"]["get"]["parameters"] = [{"name": "lang", "in": "query", "required": True}]

    assert sorted(rules(V1, changed(edit))) == [
        ("new-optional-request-parameter", "addition", "GET /items"),
        ("new-required-request-parameter", "breaking", "GET /items"),
        ("new-required-request-parameter", "breaking", "GET /items/{item_id}"),
        ("request-parameter-removed", "breaking", "GET /items"),
    ]
    became = changed(lambda doc: doc["paths"]["/items"]["get"]["parameters"][0].update(required=True))
    assert rules(V1, became) == [("request-parameter-became-required", "breaking", "GET /items")]


def test_request_bodies_asking_more_are_breaking() -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["components"]["schemas"]["NewItem"]["required"] = ["name", "colour", "size"]

    assert rules(V1, changed(edit)) == [
        ("request-property-became-required", "breaking", "POST /items"),
        ("new-required-request-property", "breaking", "POST /items"),
    ]


def test_a_narrowed_response_is_breaking_and_an_optional_property_removed_is_information() -> None:
    def edit(doc: dict[str, Any]) -> None:
        item = doc["components"]["schemas"]["Item"]
        del item["properties"]["name"], item["properties"]["note"]
        item["properties"]["id"]["type"] = "string"
        doc["paths"]["/export"]["get"]["responses"]["200"]["content"] = {"application/json": {}}
        doc["paths"]["/items/{item_id}"]["delete"]["responses"] = {"202": {"description": "queued"}}

    found = rules(V1, changed(edit))
    assert ("response-required-property-removed", "breaking", "GET /items/{item_id}") in found
    assert ("response-property-type-changed", "breaking", "GET /items/{item_id}") in found
    assert ("response-optional-property-removed", "info", "POST /items") in found
    assert ("response-media-type-removed", "breaking", "GET /export") in found
    assert ("response-success-status-removed", "breaking", "DELETE /items/{item_id}") in found
    assert ("response-success-status-added", "addition", "DELETE /items/{item_id}") in found


def test_route_lists_compare_operations_whatever_the_path_parameters_are_called() -> None:
    before = [("GET", "/items"), ("GET", "/items/{id}"), ("DELETE", "/items/{id}")]
    after = [("GET", "/items"), ("GET", "/items/{item_id}"), ("POST", "/items")]
    assert [(c.id, c.operation) for c in compare_routes(before, after)] == [
        ("api-removed-without-deprecation", "DELETE /items/{id}"),
        ("endpoint-added", "POST /items"),
    ]


def waiver(expires: datetime, operation: str = "DELETE /items/{item_id}") -> ContractWaiver:
    return ContractWaiver.model_validate(
        {
            "id": "W-7",
            "match": {"change": "api-removed-*", "service": "shop", "operation": operation},
            "owner": "dana",
            "justification": "no client deletes items; announced in the changelog",
            "expires_at": expires,
        }
    )


def served_report(after: dict[str, Any], waivers: list[ContractWaiver]) -> ApiContractReport:
    endpoints = EndpointsConfig(openapi="/openapi.json")
    with serve({"/openapi.json": (200, json.dumps(V1).encode(), {})}) as url:
        before = read_contract(endpoints, url, 5.0, "/routes")
    with serve({"/openapi.json": (200, json.dumps(after).encode(), {})}) as url:
        candidate = read_contract(endpoints, url, 5.0, "/routes")
    config = ContractConfig(waivers=waivers)
    report = contract_report(config, "v2.0", "staging", "v1.0", {"shop": before}, {"shop": candidate}, now=NOW)
    return ApiContractReport.model_validate_json(report.model_dump_json())  # as the gate reads it


def test_a_breaking_change_fails_the_gate_unless_an_unexpired_waiver_with_an_owner_accepts_it() -> None:
    dropped = changed(lambda doc: doc["paths"]["/items/{item_id}"].pop("delete"))
    report = served_report(dropped, [])
    assert report.services[0].status == "compared" and report.services[0].source == "OpenAPI document /openapi.json served by the release"
    assert contract_problems(report) == [
        "shop: DELETE /items/{item_id}: the operation was removed without being deprecated first [api-removed-without-deprecation]; "
        "restore it, or accept the break with a contract.waivers entry (owner, expiry)"
    ]
    assert report.summary_line() == "API contract vs v1.0: 1/1 services compared, 1 breaking (1 blocking, 0 waived), 0 added"

    waived = served_report(dropped, [waiver(NOW + timedelta(days=7))])
    assert contract_problems(waived) == []
    assert (waived.services[0].changes[0].waiver, waived.services[0].changes[0].waiver_owner) == ("W-7", "dana")

    expired = served_report(dropped, [waiver(NOW - timedelta(days=1))])
    assert contract_problems(expired)[0].endswith(
        "[api-removed-without-deprecation]; waiver W-7 has expired; restore it, or accept the break with a contract.waivers entry (owner, expiry)"
    )

    other = served_report(dropped, [waiver(NOW + timedelta(days=7), operation="GET /export")])
    assert len(contract_problems(other)) == 1


def test_an_unreadable_served_contract_is_no_data() -> None:
    endpoints = EndpointsConfig(openapi="/openapi.json")
    with serve({"/openapi.json": (500, b"boom", {})}) as url:
        broken = read_contract(endpoints, url, 5.0, "/routes")
        report = contract_report(ContractConfig(), "v2.0", "staging", "v1.0", {"shop": broken}, {"shop": broken}, now=NOW)
    assert contract_problems(report) == [f"shop: API contract: no data (candidate: {url}/openapi.json answered HTTP 500 (is the OpenAPI path right?))"]


@contextmanager
def answering_options(allow: dict[str, str | None], status: int = 200) -> Iterator[str]:
    """A real server answering OPTIONS: ``allow`` maps a path to its Allow header (None: no
    header); other paths are 404 (``status`` overrides the answer of the known ones)."""

    class Handler(BaseHTTPRequestHandler):
        def do_OPTIONS(self) -> None:  # noqa: N802 (http.server's naming)
            known = self.path in allow
            self.send_response(status if known else 404)
            if known and allow[self.path]:
                self.send_header("Allow", str(allow[self.path]))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(404)  # no /routes: the declared list is the configuration's
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with running(Handler) as url:
        yield url


def test_declared_routes_of_a_service_serving_no_contract_are_asked_of_each_release_with_options() -> None:
    # Flask answers OPTIONS for every route it has (200, Allow: its methods) and 404 for a path it has not.
    endpoints = EndpointsConfig(routes=["GET /items", "POST /items", "GET /items/{item_id}", "DELETE /items/{item_id}"])
    with answering_options({"/items": "GET, HEAD, POST, OPTIONS", "/items/1": "DELETE, GET, HEAD, OPTIONS"}) as url:
        before = read_contract(endpoints, url, 5.0, "/routes")
    with answering_options({"/items": "GET, HEAD, OPTIONS"}) as url:
        after = read_contract(endpoints, url, 5.0, "/routes")
    assert after.source == "routes listed in the configuration, asked with OPTIONS"
    report = contract_report(ContractConfig(), "v2.0", "staging", "v1.0", {"shop": before}, {"shop": after}, now=NOW)
    assert [(c.id, c.operation, c.blocking) for c in report.services[0].changes] == [
        ("api-path-removed-without-deprecation", "DELETE /items/{item_id}", True),
        ("api-path-removed-without-deprecation", "GET /items/{item_id}", True),
        ("api-removed-without-deprecation", "POST /items", True),
    ]
    # A service that does not answer OPTIONS (http.server: 501) shows no change, never a false one.
    with answering_options({"/items": None, "/items/1": None}, status=501) as url:
        unanswered = read_contract(endpoints, url, 5.0, "/routes")
    report = contract_report(ContractConfig(), "v2.0", "staging", "v1.0", {"shop": unanswered}, {"shop": unanswered}, now=NOW)
    assert report.services[0].changes == [] and contract_problems(report) == []


def test_a_previous_release_that_was_not_running_is_not_compared_rather_than_no_data(tmp_path: Path) -> None:
    # staging.bootstrap: false on an empty staging: nothing served a contract before the switch.
    data = {
        "version": 1,
        "project": "shop",
        "environments": {"staging": {}, "production": {}},
        "services": [{"name": "shop", "command": "{python} app.py --port {port}"}],
        "approvals": {"upstream": [], "allow_none": True},
    }
    (tmp_path / "predeploy.yaml").write_text(json.dumps(data))
    before = read_contracts(load_config(tmp_path / "predeploy.yaml"), "staging")
    with serve({"/routes": (200, json.dumps({"routes": [{"method": "GET", "path": "/items"}]}).encode(), {})}) as url:
        after = read_contract(EndpointsConfig(), url, 5.0, "/routes")
    report = contract_report(ContractConfig(), "v2.0", "staging", "v1.0", before, {"shop": after}, now=NOW)
    [service] = report.services
    assert service.status == "not-compared" and contract_problems(report) == []
    assert service.detail.startswith("the previous release v1.0 was not running before the switch: service shop is not running on staging")


def test_a_known_previous_release_whose_contract_was_never_read_is_no_data() -> None:
    with serve({"/routes": (200, json.dumps({"routes": [{"method": "GET", "path": "/items"}]}).encode(), {})}) as url:
        after = read_contract(EndpointsConfig(), url, 5.0, "/routes")
    report = contract_report(ContractConfig(), "v2.0", "staging", "v1.0", {}, {"shop": after}, now=NOW)
    assert contract_problems(report) == ["shop: API contract: no data (the contract of v1.0 was not read before the switch)"]
    first = contract_report(ContractConfig(), "v1.0", "staging", None, {}, {"shop": after}, now=NOW)
    assert first.services[0].status == "not-compared" and contract_problems(first) == []
