"""The card page, its QR codes and the pass download."""

from __future__ import annotations

from email.utils import format_datetime
from pathlib import Path

import pytest
import zxingcpp
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy.orm import Session

from factories import make_card, make_program
from passes.loyalty.models import Card
from passes.state import AppState
from passes.wallet.apple.devcerts import DevChain
from pkpass_check import verify_pkpass


@pytest.fixture
def card(db_session: Session) -> Card:
    program = make_program(db_session, name="Зерно", points_label="Баллы")
    card = make_card(db_session, program, name="Анна Смирнова")
    card.points_balance = 150
    db_session.commit()
    return card


def test_card_page_shows_number_balance_tier_qr_and_wallet_badge(
    client: FlaskClient, card: Card
) -> None:
    response = client.get(f"/c/{card.page_token}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert " ".join(card.number[i : i + 4] for i in range(0, 16, 4)) in html
    assert ">150<" in html and "Баллы" in html and "Любитель" in html
    assert f"/c/{card.page_token}/qr.svg" in html
    assert f'href="/c/{card.page_token}/card.pkpass"' in html
    assert 'alt="Add to Apple Wallet"' in html
    assert 'name="robots" content="noindex"' in html
    assert "Development certificates" in html  # the test chain is a development chain


def test_qr_png_decodes_to_the_barcode_payload(
    client: FlaskClient, card: Card, tmp_path: Path
) -> None:
    response = client.get(f"/c/{card.page_token}/qr.png")
    assert response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "private, no-cache"
    path = tmp_path / "qr.png"
    path.write_bytes(response.data)
    decoded = zxingcpp.read_barcodes(Image.open(path))
    assert [code.text for code in decoded] == [card.barcode_payload]


def test_qr_svg_is_served(client: FlaskClient, card: Card) -> None:
    response = client.get(f"/c/{card.page_token}/qr.svg")
    assert response.mimetype == "image/svg+xml"
    assert b"<svg" in response.data and b"viewBox" in response.data


@pytest.mark.parametrize("suffix", ["", "/qr.png", "/qr.svg", "/card.pkpass"])
def test_unknown_or_overlong_tokens_are_404(client: FlaskClient, suffix: str) -> None:
    assert client.get(f"/c/not-a-real-token{suffix}").status_code == 404
    assert client.get(f"/c/{'x' * 200}{suffix}").status_code == 404


def test_pass_download_is_a_verifiable_pkpass(
    client: FlaskClient, card: Card, dev_chain: DevChain, tmp_path: Path
) -> None:
    response = client.get(f"/c/{card.page_token}/card.pkpass")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.apple.pkpass"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{card.program.slug}-{card.number[-4:]}.pkpass"'
    )
    assert response.headers["Last-Modified"] == format_datetime(
        card.pass_updated_at.replace(microsecond=0), usegmt=True
    )
    document = verify_pkpass(response.data, dev_chain.root_certificate, tmp_path)
    assert document["serialNumber"] == card.serial_number
    assert document["authenticationToken"] == card.authentication_token
    assert document["barcodes"][0]["message"] == card.barcode_payload
    assert document["storeCard"]["primaryFields"][0]["value"] == 150
    assert document["webServiceURL"] == "https://loyalpass.test/passkit"
    assert len(document["locations"]) == 2


def test_pass_download_answers_304_when_not_modified_and_200_after_a_change(
    client: FlaskClient, card: Card, db_session: Session
) -> None:
    first = client.get(f"/c/{card.page_token}/card.pkpass")
    since = first.headers["Last-Modified"]
    again = client.get(f"/c/{card.page_token}/card.pkpass", headers={"If-Modified-Since": since})
    assert again.status_code == 304 and again.data == b""
    card.points_balance += 1  # within the same second as the first download
    db_session.commit()
    changed = client.get(f"/c/{card.page_token}/card.pkpass", headers={"If-Modified-Since": since})
    assert changed.status_code == 200
    junk = client.get(f"/c/{card.page_token}/card.pkpass", headers={"If-Modified-Since": "junk"})
    assert junk.status_code == 200


def test_program_redesign_changes_last_modified(
    client: FlaskClient, card: Card, db_session: Session
) -> None:
    first = client.get(f"/c/{card.page_token}/card.pkpass").headers["Last-Modified"]
    card.program.background_color = "#003366"
    db_session.commit()
    second = client.get(f"/c/{card.page_token}/card.pkpass").headers["Last-Modified"]
    assert second != first


def test_without_signing_material_pages_work_and_passes_are_503(
    app: Flask, client: FlaskClient, card: Card
) -> None:
    state: AppState = app.extensions["passes"]
    state.apple = None
    page = client.get(f"/c/{card.page_token}").get_data(as_text=True)
    assert "not available right now" in page and "card.pkpass" not in page
    assert client.get(f"/c/{card.page_token}/card.pkpass").status_code == 503
