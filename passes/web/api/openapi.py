"""The OpenAPI 3.1 description of /api/v1, served at /api/openapi.json and /api/docs.

Schemas come from the pydantic models that validate requests and build responses, so they cannot
drift; the list of operations is checked against the app's URL map by a test.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, jsonify, render_template
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from passes.web.api import schemas

docs = Blueprint("api_docs", __name__, url_prefix="/api")

REF = "#/components/schemas/{model}"
Operation = tuple[str, str, str, str, type[BaseModel] | None, int, type[BaseModel], tuple[int, ...]]

# (method, path, summary, roles, request model, success status, response model, problem statuses)
OPERATIONS: list[Operation] = [
    (
        "get",
        "/api/v1/cards/{code}",
        "Look a member up from a scan or a typed number",
        "store, partner, admin",
        None,
        200,
        schemas.CardOut,
        (401, 403, 404),
    ),
    (
        "post",
        "/api/v1/purchases",
        "Record a purchase: points, discount, cashback, tier",
        "store, admin",
        schemas.PurchaseIn,
        201,
        schemas.PurchaseOut,
        (400, 401, 403, 404, 409, 415, 422, 428),
    ),
    (
        "post",
        "/api/v1/purchases/{purchase_id}/refund",
        "Refund all or part of a purchase",
        "store, admin",
        schemas.RefundIn,
        200,
        schemas.RefundOut,
        (400, 401, 403, 404, 409, 415, 422, 428),
    ),
    (
        "post",
        "/api/v1/redemptions",
        "Pay with points, or exchange them for a reward",
        "store, partner, admin",
        schemas.RedemptionIn,
        201,
        schemas.RedemptionOut,
        (400, 401, 403, 404, 409, 415, 422, 428),
    ),
    (
        "post",
        "/api/v1/transfers",
        "Move points between two cards of the program",
        "store, admin",
        schemas.TransferIn,
        201,
        schemas.TransferOut,
        (400, 401, 403, 404, 409, 415, 422, 428),
    ),
    (
        "post",
        "/api/v1/actions",
        "Award the points of an action (review, referral, survey…)",
        "store, partner, admin",
        schemas.ActionIn,
        201,
        schemas.EntryOut,
        (400, 401, 403, 404, 409, 415, 422, 428),
    ),
    (
        "post",
        "/api/v1/credits",
        "A partner credits points (the partner is the recorded source)",
        "partner, admin",
        schemas.CreditIn,
        201,
        schemas.EntryOut,
        (400, 401, 403, 404, 409, 415, 422, 428),
    ),
    (
        "post",
        "/api/v1/adjustments",
        "Correct a balance by hand, with a reason",
        "admin",
        schemas.AdjustmentIn,
        201,
        schemas.EntryOut,
        (400, 401, 403, 404, 409, 415, 422, 428),
    ),
    (
        "get",
        "/api/v1/programs/{slug}",
        "Read a program as one document",
        "admin",
        None,
        200,
        schemas.ProgramDocumentBody,
        (401, 403, 404),
    ),
    (
        "put",
        "/api/v1/programs/{slug}",
        "Replace a program with a document (validated as on import)",
        "admin",
        schemas.ProgramDocumentBody,
        200,
        schemas.ProgramDocumentBody,
        (400, 401, 403, 404, 415, 422),
    ),
]


def openapi_document() -> dict[str, Any]:
    models: set[type[BaseModel]] = {schemas.ProblemOut}
    for described in OPERATIONS:
        if described[4] is not None:
            models.add(described[4])
        models.add(described[6])
    ordered = sorted(models, key=lambda model: model.__name__)
    _, definitions = models_json_schema(
        [
            (model, "validation" if model.__name__.endswith("In") else "serialization")
            for model in ordered
        ],
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, roles, request_model, status, response_model, problems in OPERATIONS:
        operation: dict[str, Any] = {
            "summary": summary,
            "description": f"API key roles: {roles}.",
            "operationId": method + "_" + re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_"),
            "security": [{"apiKey": []}],
            "responses": {
                str(status): {
                    "description": "success",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": REF.format(model=response_model.__name__)}
                        }
                    },
                },
                **{
                    str(code): {
                        "description": "problem (RFC 9457)",
                        "content": {
                            "application/problem+json": {
                                "schema": {"$ref": REF.format(model="ProblemOut")}
                            }
                        },
                    }
                    for code in problems
                },
            },
        }
        parameters = [
            {
                "name": name.strip("{}"),
                "in": "path",
                "required": True,
                "schema": {"type": "integer"} if name == "{purchase_id}" else {"type": "string"},
            }
            for name in path.split("/")
            if name.startswith("{")
        ]
        if method == "post":
            parameters.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "description": "retries with the same key and body return the first answer",
                    "schema": {"type": "string", "maxLength": 255},
                }
            )
        if parameters:
            operation["parameters"] = parameters
        if request_model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": REF.format(model=request_model.__name__)}
                    }
                },
            }
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "loyalpass till API",
            "version": "1",
            "description": "Money is in integer minor units; errors are application/problem+json.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
    }


@docs.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(openapi_document())


@docs.get("/docs")
def api_docs() -> str:
    return render_template("api_docs.html", spec=openapi_document())
