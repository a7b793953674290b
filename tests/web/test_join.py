"""The enrollment page, through HTTP, on both engines."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import make_program
from passes.loyalty.models import Card, Member, Program
from support import csrf_token


@pytest.fixture
def program(db_session: Session) -> Program:
    program = make_program(db_session, name="Зерно")
    db_session.commit()
    return program


def form(client: FlaskClient, program: Program, **fields: str) -> dict[str, str]:
    data = {
        "csrf_token": csrf_token(client, f"/p/{program.slug}/join"),
        "name": "Анна Смирнова",
        "email": "anna@example.com",
        "phone": "",
        "birthday": "",
        "consent": "yes",
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_join_page_is_an_accessible_form(client: FlaskClient, program: Program) -> None:
    response = client.get(f"/p/{program.slug}/join")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="en">' in html and 'name="viewport"' in html
    for field in ("name", "email", "phone", "birthday", "consent"):
        assert f'<label for="{field}"' in html and f'id="{field}"' in html
    assert 'autocomplete="email"' in html
    assert "Join Зерно" in html


def test_joining_creates_a_card_and_redirects_to_it(
    client: FlaskClient, program: Program, db_session: Session
) -> None:
    response = client.post(f"/p/{program.slug}/join", data=form(client, program))
    assert response.status_code == 303
    card = db_session.scalars(select(Card)).one()
    assert response.headers["Location"] == f"/c/{card.page_token}"
    assert card.member.email == "anna@example.com"
    page = client.get(response.headers["Location"])
    assert card.number[:4] in page.get_data(as_text=True)


def test_bad_input_re_renders_with_messages_and_keeps_values(
    client: FlaskClient, program: Program, db_session: Session
) -> None:
    response = client.post(
        f"/p/{program.slug}/join",
        data=form(client, program, name="Анна", email="not-an-email", phone="12", consent=""),
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'role="alert"' in html
    assert "This e-mail address is not valid" in html
    assert "7 to 15 digits" in html
    assert "Please agree to the program terms" in html
    assert 'value="not-an-email"' in html and 'value="Анна"' in html
    assert (
        'id="email" name="email"' in html
        and 'aria-invalid="true" aria-describedby="email-error"' in html
    )
    assert count(db_session, Member) == 0 and count(db_session, Card) == 0


def test_missing_or_wrong_csrf_token_is_refused_with_the_form(
    client: FlaskClient, program: Program, db_session: Session
) -> None:
    data = form(client, program)
    data["csrf_token"] = "forged"
    response = client.post(f"/p/{program.slug}/join", data=data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "expired or came from another site" in html
    assert 'value="anna@example.com"' in html
    del data["csrf_token"]
    assert client.post(f"/p/{program.slug}/join", data=data).status_code == 400
    assert count(db_session, Card) == 0


def test_joining_twice_never_duplicates_and_mails_the_existing_link(
    client: FlaskClient,
    program: Program,
    db_session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = client.post(f"/p/{program.slug}/join", data=form(client, program))
    assert first.status_code == 303
    token = first.headers["Location"].rsplit("/", 1)[1]
    caplog.set_level(logging.INFO, logger="passes.mail")
    again = client.post(
        f"/p/{program.slug}/join", data=form(client, program, email="ANNA@example.com")
    )
    html = again.get_data(as_text=True)
    assert again.status_code == 200
    assert "already a Зерно card" in html
    assert token not in html  # the page never reveals someone else's card
    assert count(db_session, Card) == 1 and count(db_session, Member) == 1
    mails = [r.getMessage() for r in caplog.records if r.name == "passes.mail"]
    assert len(mails) == 1 and f"https://loyalpass.test/c/{token}" in mails[0]
    # A third attempt within the resend interval does not send another mail.
    client.post(f"/p/{program.slug}/join", data=form(client, program))
    assert len([r for r in caplog.records if r.name == "passes.mail"]) == 1


def test_unknown_program_is_404(client: FlaskClient, app: Flask) -> None:
    response = client.get("/p/no-such-shop/join")
    assert response.status_code == 404
    assert "no loyalty program" in response.get_data(as_text=True)


def test_program_theme_css_carries_its_colours(client: FlaskClient, program: Program) -> None:
    response = client.get(f"/p/{program.slug}/theme.css")
    assert response.mimetype == "text/css"
    assert f"--brand-bg:{program.background_color}" in response.get_data(as_text=True)


def test_pages_send_security_headers(client: FlaskClient, program: Program) -> None:
    response = client.get(f"/p/{program.slug}/join")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
