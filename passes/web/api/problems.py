"""Errors as ``application/problem+json`` (RFC 9457) with a detail a developer can act on."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

PROBLEM_TYPE = "https://loyalpass.dev/problems/"


class Problem(Exception):
    """Raise anywhere in an API view to answer with a problem document."""

    def __init__(self, status: int, code: str, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extensions = extensions

    def response(self) -> Response:
        return problem_response(self.status, self.code, self.detail, **self.extensions)


TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    428: "Precondition required",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem_response(status: int, code: str, detail: str, **extensions: Any) -> Response:
    body = {
        "type": PROBLEM_TYPE + code,
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        **extensions,
    }
    response = Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/problem+json"
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="loyalpass"'
    return response
