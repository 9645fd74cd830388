"""Declared endpoints from OpenAPI documents, and requests counted from the smoke run itself."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from pytest_predeploy.rehearsal.endpoints import EndpointsUnreadable, declared_endpoints
from pytest_predeploy.rehearsal.openapi import OpenApiError, RouteTable, fetch_routes, read_routes_file, routes_from_document
from pytest_predeploy.rehearsal.requestlog import ENV_REQUEST_LOG, count_requests, request
from pytest_predeploy.targets.settings import EndpointsConfig
from tests.httpfiles import serve

DATA = Path(__file__).parent / "data" / "openapi"


def test_openapi3_yaml_routes_carry_the_server_path_and_skip_non_operations() -> None:
    assert read_routes_file(DATA / "shop.yaml") == [
        ("GET", "/v1/items"),
        ("POST", "/v1/items"),
        ("GET", "/v1/items/new"),
        ("DELETE", "/v1/items/{item_id}"),
        ("GET", "/v1/items/{item_id}"),
    ]


def test_swagger2_json_routes_carry_the_base_path() -> None:
    assert read_routes_file(DATA / "legacy.json") == [("GET", "/api/health"), ("GET", "/api/orders/{id}")]


def test_a_document_served_by_the_service_is_read_over_http() -> None:
    body = (DATA / "legacy.json").read_bytes()
    with serve({"/openapi.json": (200, body, {"Content-Type": "application/json"})}) as base:
        assert fetch_routes(base + "/openapi.json", timeout=5) == [("GET", "/api/health"), ("GET", "/api/orders/{id}")]
        with pytest.raises(OpenApiError, match=r"/swagger.json answered HTTP 404 \(is the OpenAPI path right\?\)"):
            fetch_routes(base + "/swagger.json", timeout=5)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "not an OpenAPI document"),
        ({"paths": {}}, "no 'openapi' or 'swagger' field"),
        ({"openapi": "4.0", "paths": {}}, "version '4.0' is not supported"),
        ({"openapi": "3.1.0"}, "field 'paths' is missing"),
        ({"openapi": "3.1.0", "paths": {"items": {}}}, "'items' does not start with '/'"),
        ({"openapi": "3.1.0", "paths": {"/items": ["get"]}}, r"field 'paths./items' is not a mapping"),
    ],
)
def test_a_document_that_is_not_openapi_is_refused_naming_file_and_field(document: object, message: str) -> None:
    with pytest.raises(OpenApiError, match=f"^api.yaml: .*{message}"):
        routes_from_document(document, "api.yaml")


def test_an_unparsable_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "openapi.json"
    path.write_text('{"openapi": "3.0.0",\n "paths": {,}}\n')
    with pytest.raises(Exception, match=rf"^{path}:2: invalid JSON"):
        read_routes_file(path)


def test_route_table_prefers_literal_segments_and_ignores_query_strings() -> None:
    table = RouteTable.of(read_routes_file(DATA / "shop.yaml"))
    assert table.match("get", "/v1/items/new") == ("GET", "/v1/items/new")
    assert table.match("GET", "/v1/items/42?fields=name") == ("GET", "/v1/items/{item_id}")
    assert table.match("DELETE", "/v1/items/42/") == ("DELETE", "/v1/items/{item_id}")
    assert table.match("PUT", "/v1/items/42") is None
    assert table.match("GET", "/v1/items/42/parts") is None


def test_requests_through_the_client_are_counted_per_declared_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "requests.jsonl"
    monkeypatch.setenv(ENV_REQUEST_LOG, str(log))
    table = RouteTable.of([("GET", "/api/health"), ("GET", "/api/orders/{id}")])
    with serve({"/api/health": (200, b'{"ok": true}', {}), "/api/orders/7": (200, b"{}", {})}) as api, serve({}) as other:
        assert request("GET", api + "/api/health").json() == {"ok": True}
        request("GET", api + "/api/orders/7")
        assert request("GET", api + "/api/orders/8?token=s3cr3t-value").status == 404  # an error is an answer, still a request
        request("GET", api + "/undeclared")
        request("GET", other + "/api/health")  # not a service we count
    counts = count_requests(log, {"api": api + "/"}, {"api": table})
    assert counts == {("api", "GET", "/api/health"): 1, ("api", "GET", "/api/orders/{id}"): 2}
    assert "s3cr3t-value" not in log.read_text()


def test_a_suite_using_the_fixture_leaves_the_log(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "requests.jsonl"
    with serve({"/api/health": (200, b"{}", {})}) as api:
        pytester.makepyfile(
            test_smoke=f"""
            def test_health(predeploy_http):
                assert predeploy_http("GET", {api + "/api/health"!r}).status == 200
            """
        )
        monkeypatch.setenv(ENV_REQUEST_LOG, str(log))
        result = pytester.runpytest_subprocess("-p", "pytest_predeploy.harness.http", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [("GET", "/api/health", 200)]


# --- where a service's declared endpoints come from -----------------------------------------

ROUTE_LIST = json.dumps({"routes": [{"method": "get", "path": "/r"}]}).encode()


def test_openapi_comes_first_then_the_route_list_then_the_configured_list() -> None:
    document = (DATA / "legacy.json").read_bytes()
    with serve({"/openapi.json": (200, document, {}), "/routes": (200, ROUTE_LIST, {})}) as both, serve({}) as bare:
        served = EndpointsConfig(openapi="/openapi.json", routes=["GET /x"])
        assert declared_endpoints(served, both, DATA, 5) == ([("GET", "/api/health"), ("GET", "/api/orders/{id}")], "OpenAPI document /openapi.json")
        from_file = EndpointsConfig(openapi="shop.yaml")
        assert declared_endpoints(from_file, bare, DATA, 5)[0][0] == ("GET", "/v1/items")
        assert declared_endpoints(EndpointsConfig(routes=["GET /x"]), both, DATA, 5) == ([("GET", "/r")], "route list /routes")
        listed = EndpointsConfig(routes=["GET /items/{id}", "POST /items"])
        assert declared_endpoints(listed, bare, DATA, 5) == ([("POST", "/items"), ("GET", "/items/{id}")], "routes listed in the configuration")


def test_a_configured_source_that_cannot_be_read_is_no_data_naming_it() -> None:
    with serve({"/routes": (500, b"boom", {})}) as broken, serve({}) as bare:
        with pytest.raises(EndpointsUnreadable, match=r"/openapi.json answered HTTP 404 \(is the OpenAPI path right\?\)"):
            declared_endpoints(EndpointsConfig(openapi="/openapi.json", routes=["GET /x"]), bare, DATA, 5)
        with pytest.raises(EndpointsUnreadable, match=r"missing.yaml: OpenAPI document not found"):
            declared_endpoints(EndpointsConfig(openapi="missing.yaml"), bare, DATA, 5)
        with pytest.raises(EndpointsUnreadable, match=r"/routes answered HTTP 500"):
            declared_endpoints(EndpointsConfig(routes=["GET /x"]), broken, DATA, 5)
        with pytest.raises(EndpointsUnreadable, match=r"/routes answered 404 and no other source is set: set the service's endpoints.openapi"):
            declared_endpoints(EndpointsConfig(), bare, DATA, 5)


def test_a_configured_route_that_is_not_method_and_path_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"'/items' is not 'METHOD /path'"):
        EndpointsConfig(routes=["/items"])


def test_a_server_answering_something_that_is_not_http_is_an_error_naming_the_url() -> None:
    # One real TCP server on 127.0.0.1 that answers a line of garbage and hangs up.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/openapi.json"

        def answer() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(OpenApiError) as error:
            fetch_routes(url, timeout=5)
        thread.join(timeout=10)
    assert str(error.value).startswith(f"{url} could not be read (")
