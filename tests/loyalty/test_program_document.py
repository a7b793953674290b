"""Programs as documents: round trip, every error with its path, one validation everywhere."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import BARCODE_KEY, make_program
from passes.accounts.api_keys import issue_key
from passes.demo import load_demo
from passes.loyalty.models import Program, RewardStock
from passes.loyalty.program_document import (
    ProgramDocumentError,
    apply_program_document,
    export_program,
    parse_program_document,
)


@pytest.fixture
def demo(db_session: Session) -> dict[str, Any]:
    program, _ = load_demo(db_session, barcode_key=BARCODE_KEY)
    db_session.commit()
    return export_program(program)


def errors_of(document: Any) -> dict[str, str]:
    with pytest.raises(ProgramDocumentError) as caught:
        parse_program_document(document)
    return dict(caught.value.errors)


def test_export_import_round_trip(db_session: Session, demo: dict[str, Any]) -> None:
    copy_of = {**copy.deepcopy(demo), "slug": "zerno-2", "card_prefix": "7702"}
    program, created = apply_program_document(db_session, parse_program_document(copy_of))
    assert created and program.slug == "zerno-2"
    again = export_program(program)
    assert {**again, "slug": "zerno", "card_prefix": "7701"} == demo
    stock = db_session.get(RewardStock, (program.id, "croissant"))
    assert stock is not None and stock.remaining == 50


def test_every_error_is_reported_with_its_path(demo: dict[str, Any]) -> None:
    bad = copy.deepcopy(demo)
    bad["colour"] = "red"
    bad["colors"]["background"] = "brown"
    bad["stores"][1]["latitude"] = 123.0
    bad["stores"].append({"name": "Зерно на Покровке"})
    bad["stores"].append({"name": "Half", "latitude": 1.0})
    bad["images"]["logo"] = "not base64!"
    bad["card_prefix"] = "77a"
    bad["rules"]["tiers"]["levels"][1]["threshold"] = -5
    bad["support"]["website"] = "zerno.example"
    errors = errors_of(bad)
    assert errors["colour"] == "is not a known field"
    assert "colour like" in errors["colors.background"]
    assert "between -90 and 90" in errors["stores[1].latitude"]
    assert "appears twice" in errors["stores[2].name"]
    assert "both latitude and longitude" in errors["stores[3]"]
    assert "base64" in errors["images.logo"]
    assert "digits" in errors["card_prefix"]
    assert any(path.startswith("rules.tiers.levels[1]") for path in errors)
    assert "https" in errors["support.website"]


@pytest.mark.parametrize("document", [[], "x", None, 5])
def test_a_document_must_be_an_object(document: Any) -> None:
    assert errors_of(document) == {"": "must be a JSON object"}


def test_required_fields(demo: dict[str, Any]) -> None:
    bare = {key: demo[key] for key in ("slug", "rules")}
    errors = errors_of(bare)
    for field in ("name", "organization_name", "description", "card_prefix"):
        assert errors[field] == "is required"


def test_images_are_checked_by_decoding(demo: dict[str, Any]) -> None:
    document = copy.deepcopy(demo)
    document["images"]["icon"] = "aGVsbG8="  # "hello": base64, but not an image
    assert "icon" in errors_of(document)["images"]


def test_replacing_keeps_matching_stores_and_refuses_prefix_changes(
    db_session: Session, demo: dict[str, Any]
) -> None:
    program = db_session.scalar(select(Program).where(Program.slug == "zerno"))
    assert program is not None
    kept_id = program.stores[0].id
    changed = copy.deepcopy(demo)
    changed["stores"] = [{**demo["stores"][0], "address": "new address"}, {"name": "Third"}]
    program, created = apply_program_document(db_session, parse_program_document(changed))
    assert not created
    assert [store.name for store in program.stores] == ["Зерно на Покровке", "Third"]
    assert program.stores[0].id == kept_id and program.stores[0].address == "new address"
    with pytest.raises(ProgramDocumentError, match="cannot change"):
        apply_program_document(
            db_session, parse_program_document({**changed, "card_prefix": "7799"})
        )


def test_card_prefix_must_be_unique(db_session: Session, demo: dict[str, Any]) -> None:
    with pytest.raises(ProgramDocumentError, match="already used"):
        apply_program_document(db_session, parse_program_document({**demo, "slug": "other"}))


def test_api_get_and_put_use_the_same_validation(
    app: Flask, client: FlaskClient, db_session: Session, demo: dict[str, Any]
) -> None:
    program = db_session.scalar(select(Program).where(Program.slug == "zerno"))
    assert program is not None
    admin = issue_key(db_session, program, role="admin", name="owner").token
    store = issue_key(db_session, program, role="store", name="t", store=program.stores[0]).token
    outsider = issue_key(db_session, make_program(db_session), role="admin", name="x").token
    db_session.commit()

    def call(method: str, token: str, body: Any = None) -> Any:
        return client.open(
            "/api/v1/programs/zerno",
            method=method,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )

    assert call("GET", admin).get_json() == demo
    assert call("GET", store).status_code == 403
    assert call("GET", outsider).status_code == 404
    bad = copy.deepcopy(demo)
    bad["stores"][0]["longitude"] = 500
    refused = call("PUT", admin, bad)
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    assert refused.get_json()["errors"] == [
        {"path": "stores[0].longitude", "message": "must be between -180 and 180"}
    ]
    db_session.expire_all()
    assert export_program(db_session.get(Program, program.id)) == demo  # nothing changed
    renamed = call("PUT", admin, {**demo, "name": "Зерно+"})
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Зерно+"
    assert call("PUT", admin, {**demo, "slug": "other"}).status_code == 422


def test_cli_export_then_import(app: Flask, demo: dict[str, Any], tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    target = tmp_path / "zerno.json"
    exported = runner.invoke(args=["passes", "program", "export", "zerno", "-o", str(target)])
    assert exported.exit_code == 0, exported.output
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document == demo
    document.update(slug="zerno-copy", card_prefix="7703")
    document["rules"]["earning"]["points"] = -1
    target.write_text(json.dumps(document), encoding="utf-8")
    refused = runner.invoke(args=["passes", "program", "import", str(target)])
    assert refused.exit_code != 0 and "rules.earning.points" in refused.output
    document["rules"]["earning"]["points"] = 2
    target.write_text(json.dumps(document), encoding="utf-8")
    imported = runner.invoke(args=["passes", "program", "import", str(target)])
    assert imported.exit_code == 0 and "created program 'zerno-copy'" in imported.output


def test_the_shop_may_rename_the_cards_fixed_labels(
    db_session: Session, demo: dict[str, Any]
) -> None:
    from passes.loyalty.view import branding_of
    from passes.wallet.apple.pass_json import PassIdentity, pass_dict
    from passes.wallet.google.objects import ImageUrls, loyalty_class, loyalty_object
    from passes.wallet.sample import sample_card_view

    assert demo["labels"] == {"tier": None, "member": None, "card_number": None}
    bad = {**copy.deepcopy(demo), "labels": {"tier": "x" * 41, "colour": "Цвет"}}
    assert set(errors_of(bad)) == {"labels.tier", "labels.colour"}

    renamed = {**copy.deepcopy(demo), "labels": {"member": "Гость", "tier": None}}
    program, _ = apply_program_document(db_session, parse_program_document(renamed))
    db_session.commit()
    assert export_program(program)["labels"] == {
        "tier": None,
        "member": "Гость",
        "card_number": None,
    }
    view = sample_card_view(branding_of(program))
    store_card = pass_dict(view, PassIdentity("pass.x", "TEAM", None))["storeCard"]
    labels = {f["key"]: f["label"] for area in store_card.values() for f in area}
    assert (labels["member"], labels["tier"], labels["card_number"]) == (
        "Гость",
        "Tier",
        "Card number",  # the rest stay standard (translated by pass.strings)
    )
    urls = ImageUrls(logo="https://x.example/l.png", hero=None)
    google = loyalty_class(branding_of(program), issuer_id="1", images=urls)
    assert google["accountNameLabel"] == "Гость"
    assert "translatedValues" not in google["localizedAccountNameLabel"]  # the shop's own word
    assert google["localizedAccountIdLabel"]["translatedValues"][0]["value"] == "Номер карты"
    assert loyalty_object(view, issuer_id="1")["secondaryLoyaltyPoints"]["label"] == "Tier"
