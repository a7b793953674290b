"""Staff users: creation rules, sign-in, the rate limit, session stamps, disabling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import make_program
from passes.accounts.models import SignInFailure, StaffUser
from passes.accounts.service import (
    FAILURES_PER_ADDRESS,
    FAILURES_PER_EMAIL,
    WINDOW,
    AccountError,
    SignInRefused,
    create_user,
    disable,
    session_stamp,
    sign_in,
    stamp_matches,
)
from passes.db import utcnow

PASSWORD = "correct horse battery"


def test_a_user_is_created_with_a_hashed_password_and_a_clerk_with_a_store_key(
    db_session: Session,
) -> None:
    program = make_program(db_session)
    marketer = create_user(
        db_session,
        program,
        email=" Anna@Shop.Example ",
        name="Анна",
        role="marketer",
        password=PASSWORD,
    )
    assert marketer.email == "anna@shop.example"
    assert PASSWORD not in marketer.password_hash and marketer.password_hash.startswith("scrypt")
    assert marketer.api_key_id is None
    clerk = create_user(
        db_session,
        program,
        email="till@shop.example",
        name="",
        role="clerk",
        password=PASSWORD,
        store=program.stores[0],
    )
    assert clerk.name == "till@shop.example"
    assert clerk.api_key is not None
    assert (clerk.api_key.role, clerk.api_key.store_id) == ("store", program.stores[0].id)


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"email": "not-an-address"}, "not an e-mail"),
        ({"role": "owner"}, "role must be"),
        ({"password": "short"}, "12 to 200"),
        ({"role": "clerk"}, "a clerk works at a store"),
    ],
)
def test_users_that_cannot_be_are_refused(
    db_session: Session, changes: dict[str, str], text: str
) -> None:
    program = make_program(db_session)
    values = {"email": "a@shop.example", "name": "A", "role": "marketer", "password": PASSWORD}
    with pytest.raises(AccountError, match=text):
        create_user(db_session, program, **{**values, **changes})


def test_an_e_mail_is_one_user_and_a_store_of_another_program_is_refused(
    db_session: Session,
) -> None:
    program, other = make_program(db_session), make_program(db_session)
    create_user(
        db_session, program, email="a@shop.example", name="A", role="admin", password=PASSWORD
    )
    with pytest.raises(AccountError, match="already"):
        create_user(
            db_session, other, email="A@shop.example", name="A", role="admin", password=PASSWORD
        )
    with pytest.raises(AccountError, match="another program"):
        create_user(
            db_session,
            program,
            email="b@shop.example",
            name="B",
            role="clerk",
            password=PASSWORD,
            store=other.stores[0],
        )


def test_sign_in_checks_the_password_and_records_failures(db_session: Session) -> None:
    program = make_program(db_session)
    user = create_user(
        db_session, program, email="a@shop.example", name="A", role="admin", password=PASSWORD
    )
    with pytest.raises(SignInRefused) as wrong:
        sign_in(db_session, "a@shop.example", "wrong password", "10.0.0.1")
    assert wrong.value.status == 422
    with pytest.raises(SignInRefused):
        sign_in(db_session, "nobody@shop.example", PASSWORD, "10.0.0.1")
    assert db_session.scalar(select(func.count()).select_from(SignInFailure)) == 2
    assert sign_in(db_session, "A@Shop.Example", PASSWORD, "10.0.0.1") is user
    assert user.last_sign_in_at is not None
    remaining = db_session.scalars(select(SignInFailure.email)).all()
    assert remaining == ["nobody@shop.example"]  # the user's own failures are forgiven


def test_too_many_failures_block_the_e_mail_then_the_address_for_a_while(
    db_session: Session,
) -> None:
    program = make_program(db_session)
    create_user(
        db_session, program, email="a@shop.example", name="A", role="admin", password=PASSWORD
    )
    now = utcnow()
    for _ in range(FAILURES_PER_EMAIL):
        with pytest.raises(SignInRefused):
            sign_in(db_session, "a@shop.example", "guess", "10.0.0.1", now=now)
    with pytest.raises(SignInRefused) as blocked:  # even with the right password
        sign_in(db_session, "a@shop.example", PASSWORD, "10.0.0.2", now=now)
    assert blocked.value.status == 429
    later = now + WINDOW + timedelta(seconds=1)
    assert sign_in(db_session, "a@shop.example", PASSWORD, "10.0.0.2", now=later).email

    for n in range(FAILURES_PER_ADDRESS):
        with pytest.raises(SignInRefused):
            sign_in(db_session, f"u{n}@shop.example", "guess", "10.9.9.9", now=later)
    with pytest.raises(SignInRefused) as from_there:
        sign_in(db_session, "a@shop.example", PASSWORD, "10.9.9.9", now=later)
    assert from_there.value.status == 429


def test_a_stamp_follows_the_password_and_disabling_ends_access(db_session: Session) -> None:
    program = make_program(db_session)
    clerk = create_user(
        db_session,
        program,
        email="c@shop.example",
        name="C",
        role="clerk",
        password=PASSWORD,
        store=program.stores[0],
    )
    stamp = session_stamp(clerk.password_hash, "secret")
    assert stamp_matches(clerk.password_hash, "secret", stamp)
    assert not stamp_matches(clerk.password_hash, "other secret", stamp)
    assert not stamp_matches("scrypt:another-hash", "secret", stamp)
    assert not stamp_matches(clerk.password_hash, "secret", None)
    disable(db_session, clerk)
    assert clerk.api_key is not None and clerk.api_key.revoked_at is not None
    with pytest.raises(SignInRefused):
        sign_in(db_session, "c@shop.example", PASSWORD, "10.0.0.1")
    assert db_session.get(StaffUser, clerk.id) is clerk


def test_cli_creates_users_and_shows_a_generated_password_once(
    app: Flask, db_session: Session
) -> None:
    program = make_program(db_session, slug="zerno-cli")
    db_session.commit()
    runner = app.test_cli_runner()
    made = runner.invoke(
        args=[
            "passes",
            "create-user",
            "--program",
            "zerno-cli",
            "--email",
            "m@zerno.example",
            "--role",
            "marketer",
            "--name",
            "Мария",
        ]
    )
    assert made.exit_code == 0, made.stderr
    password = made.stdout.strip()
    assert len(password) >= 16 and "not shown again" in made.stderr
    user = sign_in(db_session, "m@zerno.example", password, "127.0.0.1")
    assert (user.name, user.role, user.program_id) == ("Мария", "marketer", program.id)

    piped = runner.invoke(
        args=[
            "passes",
            "create-user",
            "--program",
            "zerno-cli",
            "--email",
            "c@zerno.example",
            "--role",
            "clerk",
            "--store",
            program.stores[0].name,
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
    )
    assert piped.exit_code == 0 and piped.stdout == ""
    assert sign_in(db_session, "c@zerno.example", PASSWORD, "127.0.0.1").api_key_id is not None
    for args, text in [
        (["--program", "nope", "--email", "x@zerno.example", "--role", "admin"], "no program"),
        (["--program", "zerno-cli", "--email", "x@zerno.example", "--role", "clerk"], "store"),
        (["--program", "zerno-cli", "--email", "m@zerno.example", "--role", "admin"], "already"),
    ]:
        refused = runner.invoke(args=["passes", "create-user", *args])
        assert refused.exit_code != 0 and text in refused.stderr, refused.stderr
