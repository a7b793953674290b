"""The card designer: who may use it, live previews of a draft (nothing saved), saving through
the program document's checks, uploads kept as their pixels only, and every card of the
program queued for both wallets."""

from __future__ import annotations

import html as markup
import io
import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import make_card
from passes.loyalty.models import Card, Program, WalletUpdate
from support import csrf_token
from web_staff import Staff, sign_in


def form_of(client: FlaskClient, path: str) -> dict[str, str]:
    """The designer's form as the browser would submit it unchanged."""
    html = client.get(path).get_data(as_text=True)
    fields: dict[str, str] = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html):
        fields[name] = value
    for name, value in re.findall(
        r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S
    ):
        fields[name] = value
    return {name: markup.unescape(value) for name, value in fields.items() if name != "remove_logo"}


def png(colour: tuple[int, int, int], size: tuple[int, int] = (750, 246)) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG", pnginfo=None)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("who", ["admin", "marketer", "clerk", "stranger", None])
def test_every_design_page_checks_who_is_asking(app: Flask, staff: Staff, who: str | None) -> None:
    client = app.test_client()
    if who is not None:
        sign_in(client, getattr(staff, who).email)
    base = f"/console/{staff.program.slug}/design"
    for path in (base, f"{base}/preview/apple.png", f"{base}/preview/google.png"):
        response = client.get(path)
        if who is None:
            assert response.status_code == 303, path
        else:
            assert response.status_code == (200 if who in ("admin", "marketer") else 403), path
    assert client.post(base, data={"name": "x"}).status_code == 400  # no CSRF token


def test_a_draft_is_previewed_without_being_saved(
    client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    sign_in(client, staff.marketer.email)
    base = f"/console/{staff.program.slug}/design"
    saved = Image.open(io.BytesIO(client.get(f"{base}/preview/apple.png").data)).convert("RGB")
    form = form_of(client, base)
    assert form["name"] == staff.program.name and "csrf_token" in form
    draft = {**form, "color_background": "#0a7d32", "image_strip": (png((200, 10, 10)), "s.png")}
    for wallet in ("apple", "google"):
        response = client.post(
            f"{base}/preview/{wallet}.png", data=dict(draft), content_type="multipart/form-data"
        )
        assert response.status_code == 200 and response.mimetype == "image/png", wallet
        image = Image.open(io.BytesIO(response.data)).convert("RGB")
        assert image.getpixel((320, 6)) == (0x0A, 0x7D, 0x32)
        if wallet == "apple":
            assert image.getpixel((600, 130)) == (200, 10, 10) != saved.getpixel((600, 130))
        draft["image_strip"] = (png((200, 10, 10)), "s.png")  # a stream is read once
    db_session.refresh(staff.program)
    assert staff.program.background_color != "#0a7d32" and staff.program.strip_image is None

    bad = client.post(
        f"{base}/preview/apple.png",
        data={**form, "color_background": "green", "rules": "{not json"},
    )
    assert bad.status_code == 422
    fields = {problem["field"] for problem in bad.get_json()["errors"]}
    assert fields == {"rules"}  # JSON first; the colour is checked with the document
    bad = client.post(f"{base}/preview/apple.png", data={**form, "color_background": "green"})
    assert {p["field"] for p in bad.get_json()["errors"]} == {"colors.background"}
    assert client.post(f"{base}/preview/nokia.png", data=form).status_code == 404


def test_saving_a_design_updates_every_card_in_both_wallets(
    client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    cards = [make_card(db_session, staff.program) for _ in range(3)]
    theirs = make_card(db_session, staff.other)
    db_session.commit()
    db_session.execute(WalletUpdate.__table__.delete())
    db_session.commit()
    version = staff.program.design_version
    sign_in(client, staff.admin.email)
    base = f"/console/{staff.program.slug}/design"
    form = form_of(client, base)
    jpeg = io.BytesIO()
    Image.new("RGB", (400, 400), (5, 6, 7)).save(jpeg, format="JPEG", comment=b"camera model X")
    jpeg.seek(0)
    response = client.post(
        base,
        data={
            **form,
            "name": "Зерно и точка",
            "color_background": "#112233",
            "image_logo": (jpeg, "logo.jpg"),
            "store_2_name": "Новый магазин",
            "store_2_latitude": "55,75",
            "store_2_longitude": "37.61",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303 and response.location.endswith("/design?saved=1")
    program = db_session.scalar(select(Program).where(Program.id == staff.program.id))
    assert program is not None
    db_session.refresh(program)
    assert (program.name, program.background_color) == ("Зерно и точка", "#112233")
    assert program.design_version > version
    assert program.logo_image is not None and program.logo_image.startswith(b"\x89PNG")
    assert b"camera model" not in program.logo_image
    new_store = next(store for store in program.stores if store.name == "Новый магазин")
    assert (new_store.latitude, new_store.longitude) == (55.75, 37.61)
    pending = {row.card_id for row in db_session.scalars(select(WalletUpdate))}
    program_cards = set(db_session.scalars(select(Card.id).where(Card.program_id == program.id)))
    assert {card.id for card in cards} <= program_cards
    assert pending == program_cards and theirs.id not in pending
    assert all(
        row.apple_pending and row.google_pending for row in db_session.scalars(select(WalletUpdate))
    )
    assert 'id="saved"' in client.get(f"{base}?saved=1").get_data(as_text=True)


def test_a_design_with_problems_is_shown_again_and_nothing_changes(
    client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    sign_in(client, staff.admin.email)
    base = f"/console/{staff.program.slug}/design"
    form = form_of(client, base)
    before = (staff.program.name, staff.program.design_version)
    refused = client.post(
        base,
        data={
            **form,
            "name": "",
            "store_0_latitude": "north",
            "rules": json.dumps({"earning": {"points": -1}}),
            "image_icon": (io.BytesIO(b"not an image"), "icon.png"),
        },
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "images.icon" in text and "Not saved" in text
    db_session.refresh(staff.program)
    assert (staff.program.name, staff.program.design_version) == before
    refused = client.post(base, data={**form, "name": "", "store_0_latitude": "north"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "<code>name</code>" in text
    assert "stores[0].latitude" in text
    assert csrf_token(client, base)


def test_a_store_with_keys_in_use_cannot_be_dropped_or_renamed_from_the_designer(
    client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    from passes.loyalty.models import ApiKey, Store

    sign_in(client, staff.marketer.email)
    base = f"/console/{staff.program.slug}/design"
    form = form_of(client, base)
    clerk_store = staff.program.stores[0]  # the clerk's scanner key works for it
    renamed = client.post(base, data={**form, "store_0_name": "Renamed by a typo"})
    assert renamed.status_code == 422
    assert "keys work for it" in renamed.get_data(as_text=True)
    assert db_session.get(Store, clerk_store.id) is not None
    assert db_session.scalar(
        select(ApiKey).where(ApiKey.store_id == clerk_store.id, ApiKey.revoked_at.is_(None))
    )
    huge = client.post(base, data={**form, "store_rows": "1000000000"})
    assert huge.status_code in (303, 422)  # bounded, whatever it says
    nonsense = client.post(base, data={**form, "store_rows": "many"})
    assert nonsense.status_code == 422  # every store left out: the clerk's is refused


def test_the_designer_renames_the_fixed_labels(
    client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    sign_in(client, staff.admin.email)
    base = f"/console/{staff.program.slug}/design"
    form = form_of(client, base)
    assert form["label_member"] == ""  # the standard label until the shop picks one
    version = staff.program.design_version
    saved = client.post(base, data={**form, "label_member": "Гость", "label_tier": " "})
    assert saved.status_code == 303
    db_session.refresh(staff.program)
    assert staff.program.field_labels == {"member": "Гость"}
    assert staff.program.design_version > version  # every card is updated with it
    assert 'value="Гость"' in client.get(base).get_data(as_text=True)
