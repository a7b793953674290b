"""Staff of two programs for the console's tests: an admin, a marketer and a clerk of one, and a
marketer of the other (the "stranger")."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from factories import make_card, make_program
from passes.accounts.models import StaffUser
from passes.accounts.service import create_user
from passes.loyalty.models import Program
from support import csrf_token

PASSWORD = "correct horse battery"
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclass
class Staff:
    program: Program
    other: Program
    admin: StaffUser
    marketer: StaffUser
    clerk: StaffUser
    stranger: StaffUser  # a marketer of the other program


@pytest.fixture
def staff(app: Flask, db_session: Session) -> Staff:
    program = make_program(db_session, name="Зерно")
    other = make_program(db_session, name="Other")
    make_card(db_session, program)

    def user(program: Program, email: str, role: str, **extra: object) -> StaffUser:
        return create_user(
            db_session,
            program,
            email=email,
            name=email.split("@")[0],
            role=role,
            password=PASSWORD,
            **extra,  # type: ignore[arg-type]
        )

    people = Staff(
        program,
        other,
        user(program, "admin@zerno.example", "admin"),
        user(program, "marketer@zerno.example", "marketer"),
        user(program, "clerk@zerno.example", "clerk", store=program.stores[0]),
        user(other, "marketer@other.example", "marketer"),
    )
    db_session.commit()
    return people


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
    token = csrf_token(client, "/console/login")
    return client.post(
        "/console/login", data={"csrf_token": token, "email": email, "password": password}
    )
