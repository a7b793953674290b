"""``GET/PUT /api/v1/programs/<slug>``: a program as one document, for admin keys of that program.

PUT replaces the program (it is idempotent by nature: the same document twice gives the same
program), validated exactly as ``flask passes program import`` validates.
"""

from __future__ import annotations

import json

from flask import Response, request
from sqlalchemy import select

from passes.loyalty.models import Program
from passes.loyalty.program_document import (
    ProgramDocumentError,
    apply_program_document,
    export_program,
    parse_program_document,
)
from passes.web.api.problems import Problem
from passes.web.api.till import _json, api_key, till
from passes.web.context import db


def _own_program(slug: str) -> Program:
    key = api_key("admin")
    program = db().scalar(select(Program).where(Program.slug == slug))
    if program is None or program.id != key.program_id:
        # Another program's admin learns nothing about whether the slug exists.
        raise Problem(404, "unknown_program", f"there is no program {slug!r} for this key")
    return program


@till.get("/programs/<slug>")
def get_program(slug: str) -> Response:
    return _json(export_program(_own_program(slug)), 200)


@till.put("/programs/<slug>")
def put_program(slug: str) -> Response:
    program = _own_program(slug)
    if not request.is_json:
        raise Problem(415, "unsupported_media_type", "send the document as application/json")
    try:
        data = json.loads(request.get_data())
    except ValueError as exc:
        raise Problem(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc
    if isinstance(data, dict):
        data.setdefault("slug", slug)
        if data["slug"] != slug:
            raise Problem(422, "validation_failed", "slug: renaming a program is not supported")
    try:
        document = parse_program_document(data)
        program, _ = apply_program_document(db(), document)
    except ProgramDocumentError as exc:
        db().rollback()
        errors = [
            {"path": path or "(document)", "message": message} for path, message in exc.errors
        ]
        raise Problem(
            422,
            "validation_failed",
            f"{errors[0]['path']}: {errors[0]['message']}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            errors=errors,
        ) from exc
    db().commit()
    return _json(export_program(program), 200)
