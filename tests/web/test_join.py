"""The enrollment page, through HTTP, on both engines."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from factories import make_program
from passes.loyalty.models import Card, Member, Program
from passes.mail import Mailer
from passes.state import AppState
from support import Inbox, csrf_token, free_port


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


@pytest.mark.parametrize(
    ("email", "english", "russian"),
    [
        ("anna", "it has no @", "в нём нет @"),
        ("anna@", "there is nothing after the @", "после @ ничего нет"),
        ("anna@localhost", "not a domain name such as example.com", "не имя домена"),
        ("an na@example.com", "characters an address cannot have", "символы, которых в адресе"),
        ("anna@-example.com", "not a domain name such as example.com", "не имя домена"),
    ],
)
def test_a_bad_e_mail_address_is_explained_in_the_visitors_language(
    client: FlaskClient, program: Program, email: str, english: str, russian: str
) -> None:
    data = form(client, program, name="Анна", email=email)
    html = client.post(f"/p/{program.slug}/join", data=data).get_data(as_text=True)
    assert "This e-mail address is not valid: " in html and english in html
    data = form(client, program, name="Анна", email=email)
    html = client.post(
        f"/p/{program.slug}/join", data=data, headers={"Accept-Language": "ru"}
    ).get_data(as_text=True)
    assert "Этот адрес электронной почты не подходит: " in html and russian in html


def test_a_reason_we_do_not_word_ourselves_is_said_as_email_validator_says_it() -> None:
    from email_validator import EmailNotValidError

    from passes.loyalty.enrollment import _email_reason

    assert _email_reason(EmailNotValidError("Some rarer mistake.")) == "Some rarer mistake."


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


def use_mailer(app: Flask, port: int | None) -> None:
    state: AppState = app.extensions["passes"]
    server = "127.0.0.1" if port else None
    state.mailer = Mailer(server, port or 0, None, None, "shop@example.com", use_tls=False)


def join_twice(client: FlaskClient, program: Program, **fields: str) -> tuple[str, TestResponse]:
    first = client.post(f"/p/{program.slug}/join", data=form(client, program))
    assert first.status_code == 303
    token = first.headers["Location"].rsplit("/", 1)[1]
    again = client.post(f"/p/{program.slug}/join", data=form(client, program, **fields))
    return token, again


def test_joining_twice_never_duplicates_and_mails_the_existing_link(
    app: Flask, client: FlaskClient, program: Program, db_session: Session, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    use_mailer(app, port)
    token, again = join_twice(client, program, email="ANNA@example.com")
    html = again.get_data(as_text=True)
    assert again.status_code == 200
    assert "We have e-mailed the link" in html and "already a Зерно card" in html
    assert token not in html  # the page never reveals someone else's card
    assert count(db_session, Card) == 1 and count(db_session, Member) == 1
    [envelope] = inbox.envelopes
    assert envelope.rcpt_tos == ["anna@example.com"]
    assert f"https://loyalpass.test/c/{token}".encode() in envelope.content  # type: ignore[operator]
    # Within the resend interval: no second mail, and the page says so.
    third = client.post(f"/p/{program.slug}/join", data=form(client, program))
    assert "a few minutes ago" in third.get_data(as_text=True)
    assert len(inbox.envelopes) == 1


def test_the_member_is_addressed_in_the_language_of_the_page_they_used(
    app: Flask, client: FlaskClient, program: Program, db_session: Session, smtp: tuple[int, Inbox]
) -> None:
    """The join page's language is kept with the member (for what their card will say later),
    and the link mailed to someone joining again is written in the page's language."""
    import email
    from email.message import EmailMessage
    from email.policy import default

    port, inbox = smtp
    use_mailer(app, port)
    client.set_cookie("lang", "ru")
    token, again = join_twice(client, program)
    assert again.status_code == 200
    member = db_session.scalars(select(Member)).one()
    assert member.language == "ru"
    [envelope] = inbox.envelopes
    message = email.message_from_bytes(envelope.content, policy=default)  # type: ignore[arg-type]
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == f"Ваша карта {program.name}"
    body = message.get_content()
    assert body.startswith(f"Вот ссылка на вашу карту лояльности {program.name}:")
    assert f"https://loyalpass.test/c/{token}" in body

    client.set_cookie("lang", "en")
    english = client.post(
        f"/p/{program.slug}/join", data=form(client, program, email="boris@example.com")
    )
    assert english.status_code == 303
    boris = db_session.scalars(select(Member).where(Member.email == "boris@example.com")).one()
    assert boris.language == "en"


def test_failed_mail_is_reported_and_can_be_retried(
    app: Flask, client: FlaskClient, program: Program, db_session: Session, smtp: tuple[int, Inbox]
) -> None:
    use_mailer(app, free_port())  # nothing listens there
    _, failed = join_twice(client, program)
    assert failed.status_code == 503
    assert "send its link just now" in failed.get_data(as_text=True)
    assert db_session.scalars(select(Card)).one().link_sent_at is None
    port, inbox = smtp
    use_mailer(app, port)
    retried = client.post(f"/p/{program.slug}/join", data=form(client, program))
    assert retried.status_code == 200 and len(inbox.envelopes) == 1


def test_without_mail_server_the_page_says_the_link_is_in_the_log(
    app: Flask, client: FlaskClient, program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    use_mailer(app, None)
    token, again = join_twice(client, program)
    assert "written to the server's log" in again.get_data(as_text=True)
    assert f"https://loyalpass.test/c/{token}" in caplog.text  # WARNING: visible by default


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
