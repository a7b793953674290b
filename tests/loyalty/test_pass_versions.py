"""Anything a pass shows changes its version; anything else does not."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.orm import Session

from factories import make_card, make_program
from passes.loyalty.models import Card, Program, Store, WalletUpdate


@pytest.fixture
def card(db_session: Session) -> Card:
    program = make_program(db_session)
    card = make_card(db_session, program)
    db_session.commit()
    return card


def effective(card: Card) -> datetime:
    """What Last-Modified is built from."""
    return max(card.pass_updated_at, card.program.design_updated_at)


def snapshot(card: Card) -> tuple[int, object, int, object]:
    program: Program = card.program
    return (
        card.content_version,
        card.pass_updated_at,
        program.design_version,
        program.design_updated_at,
    )


def test_balance_change_bumps_the_card(db_session: Session, card: Card) -> None:
    version, updated, design, _ = snapshot(card)
    card.points_balance += 10
    db_session.commit()
    assert card.content_version == version + 1 and card.pass_updated_at > updated
    assert card.program.design_version == design


def test_tier_change_and_member_rename_bump_the_card(db_session: Session, card: Card) -> None:
    version = card.content_version
    card.tier_key = "gourmet"
    db_session.commit()
    card.member.name = "Анна Иванова"
    db_session.commit()
    assert card.content_version == version + 2


def test_design_change_bumps_the_program_not_each_card(db_session: Session, card: Card) -> None:
    version, _, design, design_updated = snapshot(card)
    card.program.background_color = "#003366"
    db_session.commit()
    assert card.program.design_version == design + 1
    assert card.program.design_updated_at > design_updated
    assert card.content_version == version


def test_store_added_moved_or_removed_bumps_the_design(db_session: Session, card: Card) -> None:
    program = card.program
    design = program.design_version
    program.stores.append(Store(name="New store", latitude=55.7, longitude=37.5))
    db_session.commit()
    program.stores[0].latitude = 55.0
    db_session.commit()
    program.stores.remove(program.stores[0])
    db_session.commit()
    assert program.design_version == design + 3


def test_tier_rename_bumps_the_design(db_session: Session, card: Card) -> None:
    design = card.program.design_version
    rules = dict(card.program.rules)
    rules["tiers"] = {
        **rules["tiers"],
        "levels": [dict(level) for level in rules["tiers"]["levels"]],
    }
    rules["tiers"]["levels"][0]["name"] = "Новичок"
    card.program.rules = rules
    db_session.commit()
    assert card.program.design_version == design + 1


def test_changes_that_no_pass_shows_do_not_bump(db_session: Session, card: Card) -> None:
    before = snapshot(card)
    card.link_sent_at = card.pass_updated_at
    card.member.phone = "+79990001122"
    card.program.slug = card.program.slug + "-renamed"
    db_session.commit()
    assert snapshot(card) == before


def test_changes_within_one_second_still_move_the_pass_time_forward(
    db_session: Session, card: Card
) -> None:
    times = [effective(card)]
    for step in range(4):  # far quicker than a second
        card.points_balance += 1
        db_session.commit()
        times.append(effective(card))
        card.program.terms = f"terms {step}"
        db_session.commit()
        times.append(effective(card))
    whole_seconds = [moment.replace(microsecond=0) for moment in times]
    assert whole_seconds == sorted(set(whole_seconds)), "every change needs a later whole second"


def test_number_change_bumps_the_card(db_session: Session, card: Card) -> None:
    version = card.content_version
    ending = "11" if card.number.endswith("00") else "00"  # a number is random: really change it
    card.number = card.number[:-2] + ending
    db_session.commit()
    assert card.content_version == version + 1


def test_stores_added_or_deleted_directly_bump_the_design(db_session: Session, card: Card) -> None:
    program = card.program
    design = program.design_version
    db_session.add(Store(program_id=program.id, name="By id", latitude=1.0, longitude=2.0))
    db_session.commit()
    db_session.delete(program.stores[0])
    db_session.commit()
    assert program.design_version == design + 2


def test_every_card_change_leaves_one_pending_wallet_update(
    db_session: Session, card: Card
) -> None:
    assert db_session.get(WalletUpdate, card.id) is None  # a new card needs no update
    card.points_balance += 5
    db_session.commit()
    pending = db_session.get(WalletUpdate, card.id)
    assert pending is not None and pending.apple_pending and pending.google_pending
    first_revision = pending.revision
    pending.apple_pending = False  # as if the Apple sender had delivered
    db_session.commit()
    card.points_balance += 5
    card.member.name = "Анна Иванова"
    db_session.commit()
    db_session.refresh(pending)
    assert pending.revision == first_revision + 1  # coalesced: one row, one more revision
    assert pending.apple_pending and pending.google_pending
