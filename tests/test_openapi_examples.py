"""The OpenAPI document at /openapi.json: every native operation shows an example of its request body and of
each answer, declares its error answers in the native error body, and every example matches its schema; the
PersonaClick routes declare their query parameters and answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest

from promopool.api.native.examples import EXAMPLES

METHODS = {"get", "put", "post", "delete", "patch"}
ERROR_BODY = "#/components/schemas/ErrorOut"

Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def operations(document: dict[str, Any], *prefixes: str) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS and path.startswith(prefixes):
                yield path, method, operation


def native(document: dict[str, Any]) -> list[Operation]:
    found = list(operations(document, "/v1/", "/health"))
    assert len(found) >= 24, "the native operations are missing from the document"
    return found


def media(operation: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, media type, media object) of the request body and of every answer with a body."""
    for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
        yield "request", media_type, content
    for status, response in operation["responses"].items():
        for media_type, content in response.get("content", {}).items():
            yield status, media_type, content


def test_every_native_operation_has_examples(document: dict[str, Any]) -> None:
    ids = {operation["operationId"] for _, _, operation in operations(document, "/")}
    assert not EXAMPLES.keys() - ids, f"examples of no operation: {sorted(EXAMPLES.keys() - ids)}"
    missing = [
        f"{method} {path} {where} {media_type}"
        for path, method, operation in native(document)
        for where, media_type, content in media(operation)
        if "example" not in content
    ]
    assert not missing, "no example: " + ", ".join(missing)


def test_every_native_operation_declares_its_errors(document: dict[str, Any]) -> None:
    """Errors in the native error body, never the framework's; each status an operation can answer by what
    it takes: any credentials (401) and the database (503), a parameter (400), a resource named in the path
    (404), a body (413)."""
    for path, method, operation in native(document):
        if not path.startswith("/v1/"):
            continue
        name = f"{method} {path}"
        responses = operation["responses"]
        for status, response in responses.items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_BODY}, f"{name} {status}: {schema}"
        expected = {"401", "503"}
        if "{" in path or operation.get("parameters"):
            expected |= {"400"}
        if "{" in path:
            expected |= {"404"}
        if "requestBody" in operation:
            expected |= {"400", "413"}
        assert expected <= set(responses), f"{name} lacks {sorted(expected - set(responses))}"
    generate = document["paths"]["/v1/pools/{pool_id}/generate"]["post"]["responses"]
    assert "409" in generate, "a generation while another runs on the pool answers 409"


def examples(document: dict[str, Any], operations: list[Operation]) -> Iterator[tuple[str, Any, Any]]:
    for path, method, operation in operations:
        for where, media_type, content in media(operation):
            if "example" in content:
                yield f"{method} {path} {where} {media_type}", content["schema"], content["example"]


def test_every_example_matches_its_schema(document: dict[str, Any]) -> None:
    checked = 0
    every = list(operations(document, "/"))
    for name, schema, example in examples(document, every):
        # The schema's references resolve against the document, whose components it carries along.
        validator = jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})
        errors = [error.message for error in validator.iter_errors(example)]
        assert not errors, f"{name}: {errors}"
        checked += 1
    assert checked >= 100


def test_personaclick_routes_declare_parameters_and_answers(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document, "/promo_codes"):
        name = f"{method} {path}"
        declared = {p["name"] for p in operation.get("parameters", [])}
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        fields = set(body.get("schema", {}).get("properties", {}))
        assert "shop_id" in declared | fields, f"{name} declares no shop_id"
        answer = operation["responses"]["200"]["content"]["application/json"]
        assert answer["schema"] != {"type": "string"}, f"{name}: its answer is JSON, not a string"
        assert "example" in answer, f"{name}: no example"
    fetch = document["paths"]["/promo_codes/fetch"]["get"]
    assert {p["name"] for p in fetch["parameters"]} >= {"shop_id", "id", "shop_secret", "did"}
