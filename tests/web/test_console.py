"""The console's sign-in and who may open which page: every console route against every kind
of user, including a marketer of another program, on both engines."""

from __future__ import annotations

import re
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.middleware.proxy_fix import ProxyFix

from factories import make_card
from passes.accounts.service import disable
from passes.web.staff_session import SIGNED_IN_KEY, STAFF_SESSION_KEY, USER_KEY
from support import csrf_token
from web_staff import META_CSRF, PASSWORD, Staff, sign_in


def test_sign_in_sends_each_role_home(client: FlaskClient, staff: Staff) -> None:
    slug = staff.program.slug
    for user, home in [
        (staff.admin, f"/console/{slug}/"),
        (staff.marketer, f"/console/{slug}/"),
        (staff.clerk, "/store"),
    ]:
        fresh = client.application.test_client()  # a browser of their own
        response = sign_in(fresh, user.email)
        assert response.status_code == 303 and response.location.endswith(home), user.email
        page = fresh.get(home)
        assert page.status_code == 200
        assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("who", ["admin", "marketer", "clerk", "stranger", None])
def test_every_console_page_checks_who_is_asking(app: Flask, staff: Staff, who: str | None) -> None:
    client = app.test_client()
    if who is not None:
        assert sign_in(client, getattr(staff, who).email).status_code == 303
    slug = staff.program.slug
    expected = {
        # page: status for admin, marketer, clerk, stranger (of another program), nobody
        f"/console/{slug}/": {"admin": 200, "marketer": 200, "clerk": 403, "stranger": 403},
        f"/console/{slug}/users": {"admin": 200, "marketer": 403, "clerk": 403, "stranger": 403},
    }
    for path, statuses in expected.items():
        response = client.get(path)
        if who is None:
            assert response.status_code == 303 and "/console/login" in response.location, path
        else:
            assert response.status_code == statuses[who], (path, who)
    if who == "stranger":  # their own program's pages are theirs
        assert client.get(f"/console/{staff.other.slug}/").status_code == 200


def test_the_overview_and_users_pages_show_the_program(client: FlaskClient, staff: Staff) -> None:
    sign_in(client, staff.admin.email)
    overview = client.get(f"/console/{staff.program.slug}/").get_data(as_text=True)
    assert "Зерно" in overview and 'id="members">1<' in overview
    users = client.get(f"/console/{staff.program.slug}/users").get_data(as_text=True)
    assert staff.clerk.email in users and staff.stranger.email not in users


def test_a_wrong_password_re_renders_the_form_and_signs_nobody_in(
    client: FlaskClient, staff: Staff
) -> None:
    response = sign_in(client, staff.admin.email, "not the password")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "wrong" in page and 'value="admin@zerno.example"' in page and PASSWORD not in page
    with client.session_transaction() as session:
        assert USER_KEY not in session
    empty = client.post("/console/login", data={"csrf_token": csrf_token(client, "/console/login")})
    assert empty.status_code == 422


def test_repeated_failures_lock_the_sign_in_for_a_while(client: FlaskClient, staff: Staff) -> None:
    for _ in range(5):
        assert sign_in(client, staff.admin.email, "guess").status_code == 422
    locked = sign_in(client, staff.admin.email)
    assert locked.status_code == 429 and "Too many" in locked.get_data(as_text=True)


def test_sign_in_needs_the_form_s_csrf_token(client: FlaskClient, staff: Staff) -> None:
    response = client.post(
        "/console/login", data={"email": staff.admin.email, "password": PASSWORD}
    )
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert USER_KEY not in session
    sign_in(client, staff.admin.email)
    assert client.post("/console/logout").status_code == 400  # sign-out needs it too


def test_a_sign_in_starts_a_fresh_session_and_sign_out_ends_it(
    client: FlaskClient, staff: Staff
) -> None:
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    sign_in(client, staff.marketer.email)
    with client.session_transaction() as session:
        assert "planted" not in session and session[USER_KEY] == staff.marketer.id
        assert isinstance(session[SIGNED_IN_KEY], int)
    home = f"/console/{staff.program.slug}/"
    page = client.get(home).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    assert client.post("/console/logout", data={"csrf_token": token.group(1)}).status_code == 303
    assert client.get(home).status_code == 303


def test_a_password_change_or_disabling_ends_open_sessions(
    app: Flask, staff: Staff, db_session: Session
) -> None:
    marketer, clerk = app.test_client(), app.test_client()
    sign_in(marketer, staff.marketer.email)
    sign_in(clerk, staff.clerk.email)
    assert clerk.get("/store").status_code == 200
    staff.marketer.password_hash = "scrypt:changed-elsewhere"
    disable(db_session, staff.clerk)
    db_session.commit()
    assert marketer.get(f"/console/{staff.program.slug}/").status_code == 303
    with marketer.session_transaction() as session:
        assert USER_KEY not in session
    assert clerk.get("/store").status_code == 303  # the scanner too


def test_a_clerk_records_purchases_from_the_scanner_through_their_store_key(
    client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    sign_in(client, staff.clerk.email)
    with client.session_transaction() as session:
        assert session[STAFF_SESSION_KEY] == staff.clerk.api_key_id
    page = client.get("/store").get_data(as_text=True)
    meta = META_CSRF.search(page)
    assert meta is not None
    number = make_card(db_session, staff.program).number
    db_session.commit()
    bought = client.post(
        "/api/v1/purchases",
        json={"card": number, "amount": 10_000, "currency": "RUB"},
        headers={"Idempotency-Key": str(uuid.uuid4()), "X-CSRFToken": meta.group(1)},
    )
    assert bought.status_code == 201, bought.get_data(as_text=True)
    staff.clerk.password_hash = "scrypt:changed-elsewhere"
    db_session.commit()
    again = client.post(
        "/api/v1/purchases",
        json={"card": number, "amount": 10_000, "currency": "RUB"},
        headers={"Idempotency-Key": str(uuid.uuid4()), "X-CSRFToken": meta.group(1)},
    )
    assert again.status_code == 401


# --------------------------------------------------------------------------- campaigns


def form_token(client: FlaskClient, path: str) -> str:
    return csrf_token(client, path)


def campaign_form(**changes: str) -> dict[str, str]:
    values = {
        "title": "Кофе за полцены",
        "text": "Любой кофе −50 % до воскресенья",
        "kind": "all",
        "valid_until": "2099-01-01T12:00",
        "when": "now",
        "action": "schedule",
    }
    values.update(changes)
    return values


def test_a_marketer_previews_schedules_and_cancels_a_campaign(
    client: FlaskClient, staff: Staff
) -> None:
    sign_in(client, staff.marketer.email)
    base = f"/console/{staff.program.slug}/campaigns"
    preview = client.post(
        f"{base}/new",
        data={**campaign_form(action="preview"), "csrf_token": form_token(client, f"{base}/new")},
    )
    assert preview.status_code == 200
    assert 'id="reach">This segment reaches <strong>1</strong>' in preview.get_data(as_text=True)
    refused = client.post(
        f"{base}/new",
        data={
            **campaign_form(kind="tier", segment_tier="platinum"),
            "csrf_token": form_token(client, f"{base}/new"),
        },
    )
    assert refused.status_code == 422 and "segment.tier" in refused.get_data(as_text=True)
    later = client.post(
        f"{base}/new",
        data={
            **campaign_form(when="later", send_at="2098-06-01T09:00"),
            "csrf_token": form_token(client, f"{base}/new"),
        },
    )
    assert later.status_code == 303
    detail = client.get(later.location)
    page = detail.get_data(as_text=True)
    assert 'id="status">scheduled' in page and "Кофе за полцены" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    cancelled = client.post(f"{later.location}/cancel", data={"csrf_token": token.group(1)})
    assert cancelled.status_code == 303
    assert 'id="status">cancelled' in client.get(later.location).get_data(as_text=True)
    again = client.post(f"{later.location}/cancel", data={"csrf_token": token.group(1)})
    assert again.status_code == 409
    listing = client.get(base).get_data(as_text=True)
    assert "Кофе за полцены" in listing and "cancelled" in listing


@pytest.mark.parametrize("who", ["admin", "marketer", "clerk", "stranger", None])
def test_every_campaign_page_checks_who_is_asking(
    app: Flask, staff: Staff, db_session: Session, who: str | None
) -> None:
    from datetime import timedelta

    from passes.db import utcnow
    from passes.marketing.campaigns import Draft, schedule

    now = utcnow()
    draft = Draft("Offer", "Text", {"kind": "all"}, now, now + timedelta(days=1), now)
    campaign = schedule(db_session, staff.program, draft, "admin@zerno.example")
    theirs = schedule(db_session, staff.other, draft, "marketer@other.example")
    db_session.commit()
    client = app.test_client()
    if who is not None:
        sign_in(client, getattr(staff, who).email)
    base = f"/console/{staff.program.slug}/campaigns"
    allowed = who in ("admin", "marketer")
    for path in (base, f"{base}/new", f"{base}/{campaign.id}"):
        response = client.get(path)
        if who is None:
            assert response.status_code == 303, path
        else:
            assert response.status_code == (200 if allowed else 403), (path, who)
    cancel = client.post(f"{base}/{campaign.id}/cancel", data={})
    assert cancel.status_code == 400  # no CSRF token: refused before anything else
    if allowed:  # a campaign of another program does not exist here
        assert client.get(f"{base}/{theirs.id}").status_code == 404
    elif who is not None:  # with a valid CSRF token of their own pages: still refused
        page = client.get("/store" if who == "clerk" else f"/console/{staff.other.slug}/")
        token = re.search(
            r'(?:name="csrf_token" value|name="csrf-token" content)="([^"]+)"',
            page.get_data(as_text=True),
        )
        assert token is not None
        refused = client.post(f"{base}/{campaign.id}/cancel", data={"csrf_token": token.group(1)})
        assert refused.status_code == 403
        db_session.refresh(campaign)
        assert campaign.status == "scheduled"


def test_a_console_session_ends_after_its_hours_however_active(
    client: FlaskClient, staff: Staff
) -> None:
    sign_in(client, staff.admin.email)
    home = f"/console/{staff.program.slug}/"
    assert client.get(home).status_code == 200
    with client.session_transaction() as session:
        session[SIGNED_IN_KEY] -= 12 * 3600 + 1  # CONSOLE_SESSION_HOURS ago
    assert client.get(home).status_code == 303


def test_a_clerk_whose_password_changed_loses_the_scanner_too(
    client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    sign_in(client, staff.clerk.email)
    assert client.get("/store").status_code == 200
    staff.clerk.password_hash = "scrypt:changed-elsewhere"  # the store key stays valid
    db_session.commit()
    assert client.get("/store").status_code == 303


def test_a_failed_sign_in_clears_an_earlier_scanner_session(
    client: FlaskClient, staff: Staff
) -> None:
    sign_in(client, staff.clerk.email)
    meta = META_CSRF.search(client.get("/store").get_data(as_text=True))
    assert meta is not None  # someone else tries on the same tablet
    failed = client.post(
        "/console/login",
        data={"csrf_token": meta.group(1), "email": staff.clerk.email, "password": "wrong"},
    )
    assert failed.status_code == 422
    with client.session_transaction() as session:
        assert STAFF_SESSION_KEY not in session and USER_KEY not in session


def test_behind_a_proxy_the_rate_limit_counts_the_client_s_address(
    app: Flask, staff: Staff, db_session: Session
) -> None:
    from passes.accounts.models import SignInFailure

    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # what PROXY_HOPS=1 installs
    client = app.test_client()
    token = csrf_token(client, "/console/login")
    client.post(
        "/console/login",
        data={"csrf_token": token, "email": staff.admin.email, "password": "guess"},
        headers={"X-Forwarded-For": "203.0.113.7"},
    )
    addresses = db_session.scalars(select(SignInFailure.address)).all()
    assert addresses == ["203.0.113.7"]


def test_a_campaign_picture_is_kept_as_pixels_and_served_once_sent(
    client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    import io

    from PIL import Image

    from passes.marketing.campaigns import send_due
    from passes.marketing.models import Campaign

    sign_in(client, staff.marketer.email)
    base = f"/console/{staff.program.slug}/campaigns"
    bad = client.post(
        f"{base}/new",
        data={
            **campaign_form(),
            "csrf_token": form_token(client, f"{base}/new"),
            "image": (io.BytesIO(b"<svg/>"), "offer.svg"),
        },
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and 'id="image-error"' in bad.get_data(as_text=True)
    picture = io.BytesIO()
    Image.new("RGB", (1200, 400), (10, 120, 200)).save(picture, format="JPEG", comment=b"secret")
    picture.seek(0)
    done = client.post(
        f"{base}/new",
        data={
            **campaign_form(),
            "csrf_token": form_token(client, f"{base}/new"),
            "image": (picture, "offer.jpg"),
        },
        content_type="multipart/form-data",
    )
    assert done.status_code == 303
    campaign = db_session.scalars(select(Campaign).order_by(Campaign.id.desc())).first()
    assert campaign is not None and campaign.image is not None
    assert campaign.image.startswith(b"\x89PNG") and b"secret" not in campaign.image
    path = f"/p/{staff.program.slug}/offers/c{campaign.id}.png"
    assert client.get(path).status_code == 404  # not sent yet: not public yet
    assert send_due(db_session) == [campaign.id]
    served = client.get(path)
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.data == campaign.image
    assert client.get(f"/p/{staff.other.slug}/offers/c{campaign.id}.png").status_code == 404

    from passes.loyalty.models import Card
    from passes.loyalty.view import card_view

    card = db_session.scalars(select(Card).where(Card.program_id == staff.program.id)).first()
    assert card is not None
    [offer] = card_view(card).offers
    assert offer.has_image and offer.key == f"c{campaign.id}"
