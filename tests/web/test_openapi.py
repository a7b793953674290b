"""/api/openapi.json is valid OpenAPI 3.1, describes every API route, and real answers match it."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from sqlalchemy.orm import Session

from factories import make_card, make_program
from passes.accounts.api_keys import issue_key


def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return document


def test_document_is_valid_openapi_31(client: FlaskClient) -> None:
    document = spec(client)
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_every_api_route_is_described_and_nothing_else(app: Flask, client: FlaskClient) -> None:
    routes = {
        (method.lower(), re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    described = {
        (method, path) for path, methods in spec(client)["paths"].items() for method in methods
    }
    assert routes == described


def check(document: dict[str, Any], name: str, body: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    errors = list(Draft202012Validator(schema).iter_errors(body))
    assert errors == [], [error.message for error in errors]


def test_answers_match_the_published_schemas(client: FlaskClient, db_session: Session) -> None:
    program = make_program(db_session, rules={"currency": "RUB"})
    card = make_card(db_session, program)
    token = issue_key(db_session, program, role="store", name="t", store=program.stores[0]).token
    db_session.commit()
    document = spec(client)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    lookup = client.get(f"/api/v1/cards/{card.number}", headers=headers)
    check(document, "CardOut", lookup.get_json())
    purchase = client.post(
        "/api/v1/purchases",
        json={"card": card.number, "amount": 5000, "currency": "RUB"},
        headers=headers,
    )
    check(document, "PurchaseOut", purchase.get_json())
    refused = client.post(
        "/api/v1/purchases",
        json={"card": card.number, "amount": -1, "currency": "RUB"},
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    check(document, "ProblemOut", refused.get_json())
    schema = document["components"]["schemas"]["PurchaseIn"]
    assert schema["additionalProperties"] is False and "amount" in schema["required"]


def test_docs_page_lists_every_operation(client: FlaskClient) -> None:
    html = client.get("/api/docs").get_data(as_text=True)
    for path, methods in spec(client)["paths"].items():
        for method in methods:
            assert f"{method.upper()} {path}" in html
