"""The OpenAPI document, the self-hosted docs page, /healthz and /readyz, and the one error shape."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from web.app import create_app
from web.config import Settings
from web.db import make_engine

pytestmark = pytest.mark.db

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.json
    assert set(body) == {"error"}
    error = body["error"]
    assert error["status"] == status
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"status", "code", "message", "fields", "what", "id", "reason",
                          "machine", "current", "target", "field", "request_id"}
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", error["request_id"])
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


@pytest.fixture
def spec(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert r.is_json
    return r.json


# --- OpenAPI -----------------------------------------------------------------------------------


def test_the_openapi_document_is_openapi_3_with_title_version_and_the_main_paths(spec):
    assert re.fullmatch(r"3\.\d+\.\d+", spec["openapi"])
    assert spec["info"]["title"] and spec["info"]["version"]
    for path in ("/api/v1/auth/token", "/api/v1/auth/session", "/api/v1/auth/me",
                 "/api/v1/demands", "/api/v1/demands/{demand_id}", "/api/v1/resources",
                 "/api/v1/units", "/api/v1/users", "/api/v1/assignments", "/api/v1/reports"):
        assert path in spec["paths"], path
    assert all(path.startswith("/api/v1/") for path in spec["paths"])


def test_every_operation_in_the_openapi_document_has_a_summary_and_responses(spec):
    ops = list(operations(spec))
    assert len(ops) > 20
    missing = [(path, method) for path, method, op in ops if not op.get("summary", "").strip()]
    assert missing == []
    no_responses = [(path, method) for path, method, op in ops if not op.get("responses")]
    assert no_responses == []


def test_every_operation_id_in_the_openapi_document_is_unique(spec):
    ids = [op["operationId"] for _, _, op in operations(spec) if "operationId" in op]
    assert len(ids) == len(set(ids))


def test_every_path_template_parameter_is_declared_as_a_required_path_parameter(spec):
    for path, item in spec["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        for method, op in item.items():
            if method not in METHODS:
                continue
            declared = {p["name"]: p for p in item.get("parameters", []) + op.get("parameters", [])
                        if p.get("in") == "path"}
            assert set(declared) == names, (path, method)
            assert all(p.get("required") is True for p in declared.values()), (path, method)


def test_every_reference_in_the_openapi_document_resolves(spec):
    for ref in set(refs(spec)):
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            assert part in node, ref
            node = node[part]


def test_the_openapi_document_declares_bearer_auth_and_sign_in_needs_none(spec):
    scheme = spec["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert spec["security"] == [{"bearer": []}]
    assert spec["paths"]["/api/v1/auth/token"]["post"]["security"] == []
    assert spec["paths"]["/api/v1/auth/session"]["post"]["security"] == []


# --- the docs page -----------------------------------------------------------------------------


class AssetLinks(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.links.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])


def docs_asset_links(client) -> list[str]:
    r = client.get("/api/v1/docs")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    parser = AssetLinks()
    parser.feed(r.get_data(as_text=True))
    return parser.links


def test_the_docs_page_loads_its_scripts_and_styles_from_this_server_only(client):
    links = docs_asset_links(client)
    assert any(link.endswith(".js") for link in links)
    assert any(link.endswith(".css") for link in links)
    assert [link for link in links if not link.startswith("/") or link.startswith("//")] == []


def test_every_asset_the_docs_page_links_answers_200_with_a_body(client):
    links = docs_asset_links(client)
    assert links
    for link in links:
        r = client.get(link)
        assert r.status_code == 200, link
        assert len(r.data) > 0, link
        r.close()


def test_the_docs_page_points_swagger_ui_at_the_local_openapi_document(client):
    html = client.get("/api/v1/docs").get_data(as_text=True)
    assert '"/api/v1/openapi.json"' in html


# --- health ------------------------------------------------------------------------------------


def standalone_app(engine):
    """An app on `engine` that holds no test transaction open (the `app` fixture keeps one open
    for the whole test, and on SQLite every transaction, reads included, takes the write lock)."""
    return create_app(Settings(database_url=str(engine.url), secret_key="test-secret",
                               testing=True), engine=engine)


def test_healthz_answers_200_without_asking_the_database(tmp_path):
    nothing = make_engine(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")  # cannot open
    try:
        r = standalone_app(nothing).test_client().get("/healthz")
    finally:
        nothing.dispose()
    assert r.status_code == 200
    assert r.json == {"status": "ok"}


def test_readyz_answers_200_with_the_database_at_the_code_head(engine):
    r = standalone_app(engine).test_client().get("/readyz")
    assert r.status_code == 200, r.json
    assert r.json["status"] == "ready"
    database = r.json["checks"]["database"]
    assert database["ok"] is True
    assert database["dialect"] == engine.dialect.name
    assert database["revision"] == database["head"]


def test_readyz_answers_503_with_the_reason_when_the_schema_is_missing(tmp_path):
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        r = standalone_app(empty).test_client().get("/readyz")
    finally:
        empty.dispose()
    assert r.status_code == 503
    assert r.json["status"] == "unavailable"
    assert r.json["checks"]["database"]["ok"] is False
    assert "not migrated" in r.json["checks"]["database"]["reason"]


# --- the one error shape -----------------------------------------------------------------------


def test_an_unknown_url_under_the_api_answers_404_in_the_error_shape(client):
    error = assert_error(client.get("/api/v1/no-such-thing"), 404)
    assert error["code"] == "not_found"


def test_a_wrong_method_answers_405_in_the_error_shape(client):
    error = assert_error(client.put("/api/v1/auth/me", json={}), 405)
    assert error["code"] == "method_not_allowed"


def test_a_malformed_json_body_answers_400_or_422_in_the_error_shape(client):
    r = client.post("/api/v1/auth/token", data='{"username": "sec_a1", ',
                    content_type="application/json")
    assert r.status_code in (400, 422)
    assert_error(r, r.status_code)


def test_a_validation_error_answers_422_naming_each_bad_field(client):
    error = assert_error(client.post("/api/v1/auth/token", json={"username": 5}), 422)
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"username", "password"}
    assert all(isinstance(m, list) and m for m in error["fields"].values())


def test_a_validation_error_in_the_query_string_names_the_field(client, world):
    r = client.get("/api/v1/demands?per_page=0", headers=world.headers("sec_a1"))
    error = assert_error(r, 422)
    assert error["code"] == "validation_error"
    assert any(name.endswith("per_page") for name in error["fields"])


def test_a_validation_error_in_a_nested_field_names_the_nested_path(client, world):
    r = client.post("/api/v1/users", headers=world.headers("sec_a1"), json={
        "username": "new_one", "password": "password123", "display_name": "新",
        "roles": [{"role": "emperor"}]})
    error = assert_error(r, 422)
    assert "roles.0.role" in error["fields"]
