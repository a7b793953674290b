"""Users and API keys in the console: admins only; passwords and tokens shown once; a disabled
user or a revoked key stops working at once; nobody reaches another program's people."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from passes.accounts.api_keys import issue_key
from passes.accounts.models import StaffUser
from passes.loyalty.models import ApiKey
from support import csrf_token
from web_staff import Staff, sign_in


@pytest.mark.parametrize("who", ["admin", "marketer", "clerk", "stranger", None])
def test_only_the_programs_admins_manage_people_and_keys(
    app: Flask, staff: Staff, who: str | None
) -> None:
    client = app.test_client()
    if who is not None:
        sign_in(client, getattr(staff, who).email)
    for page in ("users", "keys"):
        response = client.get(f"/console/{staff.program.slug}/{page}")
        if who is None:
            assert response.status_code == 303
        else:
            assert response.status_code == (200 if who == "admin" else 403), (page, who)


def test_adding_a_user_shows_the_password_once_and_it_works(
    app: Flask, client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    sign_in(client, staff.admin.email)
    base = f"/console/{staff.program.slug}/users"
    token = csrf_token(client, base)
    refused = client.post(base, data={"csrf_token": token, "email": "nope", "role": "marketer"})
    assert refused.status_code == 422 and 'id="users-error"' in refused.get_data(as_text=True)
    refused = client.post(base, data={"csrf_token": token, "email": "c@x.example", "role": "clerk"})
    assert refused.status_code == 422  # a clerk needs a store
    store = staff.program.stores[0]
    added = client.post(
        base,
        data={
            "csrf_token": token,
            "email": "New@Clerk.example",
            "name": "Пётр",
            "role": "clerk",
            "store": str(store.id),
        },
    )
    assert added.status_code == 201
    password = re.search(r'<code id="password">([^<]+)</code>', added.get_data(as_text=True))
    assert password is not None
    assert password.group(1) not in client.get(base).get_data(as_text=True)  # once
    person = db_session.scalar(select(StaffUser).where(StaffUser.email == "new@clerk.example"))
    assert person is not None and person.role == "clerk" and person.api_key_id is not None

    other = app.test_client()
    assert sign_in(other, "new@clerk.example", password.group(1)).location.endswith("/store")

    renewed = client.post(f"{base}/{person.id}/password", data={"csrf_token": token})
    fresh = re.search(r'<code id="password">([^<]+)</code>', renewed.get_data(as_text=True))
    assert fresh is not None and fresh.group(1) != password.group(1)
    assert other.get("/store").status_code in (302, 303)  # the old session ended

    assert client.post(f"{base}/{person.id}/disable", data={"csrf_token": token}).status_code == 303
    db_session.refresh(person)
    assert person.disabled_at is not None
    key = db_session.get(ApiKey, person.api_key_id)
    assert key is not None and key.revoked_at is not None  # the scanner key goes with them
    me = client.post(f"{base}/{staff.admin.id}/disable", data={"csrf_token": token})
    assert me.status_code == 409
    theirs = client.post(f"{base}/{staff.stranger.id}/disable", data={"csrf_token": token})
    assert theirs.status_code == 404  # another program's user, through our own pages
    db_session.refresh(staff.stranger)
    assert staff.stranger.disabled_at is None


def test_issuing_and_revoking_a_key(
    app: Flask, client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    sign_in(client, staff.admin.email)
    base = f"/console/{staff.program.slug}/keys"
    token = csrf_token(client, base)
    for data in (
        {"name": "", "role": "partner"},
        {"name": "till", "role": "store"},
        {"name": "x", "role": "root"},
        {"name": "x", "role": "partner", "days": "0"},
    ):
        assert client.post(base, data={"csrf_token": token, **data}).status_code == 422, data
    issued = client.post(
        base,
        data={
            "csrf_token": token,
            "name": "till 7",
            "role": "store",
            "store": str(staff.program.stores[1].id),
            "days": "30",
        },
    )
    assert issued.status_code == 201
    shown = re.search(r'<code id="token">(lp_[^<]+)</code>', issued.get_data(as_text=True))
    assert shown is not None
    api = app.test_client()
    headers = {"Authorization": f"Bearer {shown.group(1)}"}
    record = db_session.scalar(select(ApiKey).where(ApiKey.name == "till 7"))
    assert record is not None and record.store_id == staff.program.stores[1].id
    assert record.expires_at is not None and shown.group(1).startswith(f"lp_{record.prefix}_")
    unknown = "/api/v1/cards/0000000000000000"
    assert api.get(unknown, headers=headers).status_code == 404  # the key works: no such card
    assert client.post(f"{base}/{record.id}/revoke", data={"csrf_token": token}).status_code == 303
    assert api.get(unknown, headers=headers).status_code == 401
    theirs = client.post(
        f"/console/{staff.other.slug}/keys/{record.id}/revoke", data={"csrf_token": token}
    )
    assert theirs.status_code == 403  # not their program's pages
    foreign = issue_key(db_session, staff.other, role="partner", name="theirs")
    db_session.commit()
    through_ours = client.post(f"{base}/{foreign.record.id}/revoke", data={"csrf_token": token})
    assert through_ours.status_code == 404  # another program's key, through our own pages
    kept = db_session.get(ApiKey, foreign.record.id)
    assert kept is not None and kept.revoked_at is None
