"""Campaigns: who each segment reaches, scheduling checks, sending once (two workers too),
the offer on both wallets' cards, cancelling, and offers leaving when they end."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from factories import BARCODE_KEY, buy, make_card, make_program
from passes.db import make_sessionmaker, utcnow
from passes.loyalty.enrollment import Applicant, enroll
from passes.loyalty.models import Card, Program, WalletUpdate
from passes.loyalty.view import card_view
from passes.marketing.campaigns import (
    CampaignError,
    Draft,
    Progress,
    active_offers,
    cancel,
    end_expired,
    progress,
    reach,
    schedule,
    send_due,
)
from passes.marketing.models import Campaign, CardOffer
from passes.push.models import AppleDevice, AppleRegistration, GoogleObject
from passes.wallet.apple.pass_json import pass_dict
from support import IDENTITY

RULES: dict[str, Any] = {
    "currency": "RUB",
    "timezone": "UTC",
    "earning": {"points": 1, "per_amount": 100},
    "tiers": {
        "metric": "spend",
        "window_days": 365,
        "levels": [
            {"key": "lover", "name": "Любитель", "threshold": 0},
            {"key": "gourmet", "name": "Гурман", "threshold": 100_000},
        ],
    },
}


def draft(segment: dict[str, Any], **changes: Any) -> Draft:
    now = utcnow()
    values: dict[str, Any] = {
        "title": "Кофе за полцены",
        "text": "Любой кофе −50 % до воскресенья",
        "segment": segment,
        "valid_from": now - timedelta(minutes=1),
        "valid_until": now + timedelta(days=7),
        "send_at": now,
    }
    values.update(changes)
    return Draft(**values)


def member(session: Session, program: Program, birthday: date | None = None) -> Card:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    return enroll(
        session, program, Applicant("Мария", email, None, birthday), barcode_key=BARCODE_KEY
    ).card


def test_each_segment_reaches_its_members(db_session: Session) -> None:
    program = make_program(db_session, rules=RULES)
    now = utcnow()
    big, idle, birthday, plain = (
        member(db_session, program),
        member(db_session, program),
        member(db_session, program, date(1990, now.month, 1)),
        member(db_session, program),
    )
    buy(db_session, big, 150_000)  # gourmet now, balance 1,500
    buy(db_session, idle, 1_000, now - timedelta(days=100))  # a purchase long ago
    device = AppleDevice(library_identifier=uuid.uuid4().hex, push_token="ab" * 32)
    db_session.add(device)
    db_session.flush()
    db_session.add(AppleRegistration(device_id=device.id, card_id=big.id))
    db_session.add(GoogleObject(card_id=birthday.id, object_id=f"x.{birthday.id}", sent_body={}))
    db_session.flush()
    today = now.date().isoformat()
    expected = {
        "all": ({"kind": "all"}, {big.id, idle.id, birthday.id, plain.id}),
        "tier": ({"kind": "tier", "tier": "gourmet"}, {big.id}),
        "inactive": ({"kind": "inactive", "days": 30}, {idle.id, birthday.id, plain.id}),
        "birthday": ({"kind": "birthday_month"}, {birthday.id}),
        "balance": ({"kind": "balance", "at_least": 1000}, {big.id}),
        "spend": (
            {"kind": "spend", "from": today, "until": today, "at_least": 100_000},
            {big.id},
        ),
        "joined": (
            {"kind": "joined", "from": today, "until": today},
            {big.id, idle.id, birthday.id, plain.id},
        ),
        "apple": ({"kind": "wallet", "wallet": "apple"}, {big.id}),
        "google": ({"kind": "wallet", "wallet": "google"}, {birthday.id}),
        "none": ({"kind": "wallet", "wallet": "none"}, {idle.id, plain.id}),
    }
    other = make_program(db_session, rules=RULES)
    member(db_session, other)  # never reached by the first program's campaigns
    for name, (segment, cards) in expected.items():
        assert reach(db_session, program, segment, now) == len(cards), name
        campaign = schedule(db_session, program, draft(segment), "marketer@shop.example")
        db_session.commit()
        assert send_due(db_session) == [campaign.id], name
        reached = set(
            db_session.scalars(
                select(CardOffer.card_id).where(CardOffer.campaign_id == campaign.id)
            )
        )
        assert reached == cards, name
        assert campaign.targeted == len(cards)


@pytest.mark.parametrize(
    ("segment", "changes", "field"),
    [
        ({"kind": "all"}, {"title": " "}, "title"),
        ({"kind": "all"}, {"text": "x" * 301}, "text"),
        ({"kind": "all"}, {"valid_until": utcnow() - timedelta(days=30)}, "valid_until"),
        ({"kind": "nobody"}, {}, "segment.kind"),
        ({"kind": "tier", "tier": "platinum"}, {}, "segment.tier"),
        ({"kind": "inactive", "days": 0}, {}, "segment.days"),
        (
            {"kind": "spend", "from": "2026-13-01", "until": "2026-12-01", "at_least": 1},
            {},
            "segment.from",
        ),
        ({"kind": "joined", "from": "2026-12-02", "until": "2026-12-01"}, {}, "segment.until"),
        ({"kind": "wallet", "wallet": "nokia"}, {}, "segment.wallet"),
    ],
)
def test_a_campaign_that_cannot_be_sent_is_refused_naming_the_field(
    db_session: Session, segment: dict[str, Any], changes: dict[str, Any], field: str
) -> None:
    program = make_program(db_session, rules=RULES)
    with pytest.raises(CampaignError) as refused:
        schedule(db_session, program, draft(segment, **changes), "m@shop.example")
    assert refused.value.field == field
    assert db_session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_a_sent_offer_is_on_the_card_for_both_wallets_once(db_session: Session) -> None:
    program = make_program(db_session, rules=RULES)
    card = make_card(db_session, program)
    db_session.flush()
    version = card.content_version
    later = schedule(
        db_session, program, draft({"kind": "all"}, send_at=utcnow() + timedelta(hours=1)), "m"
    )
    now = schedule(db_session, program, draft({"kind": "all"}), "m")
    db_session.commit()
    assert send_due(db_session) == [now.id]  # the later one waits for its time
    assert send_due(db_session) == []  # and nothing is sent twice
    db_session.refresh(card)
    assert card.content_version == version + 1
    outbox = db_session.get(WalletUpdate, card.id)
    assert outbox is not None and outbox.apple_pending and outbox.google_pending
    view = card_view(card)
    assert [offer.title for offer in view.offers] == ["Кофе за полцены"]
    back = pass_dict(view, IDENTITY)["storeCard"]["backFields"]
    offer_field = next(field for field in back if field["key"] == "offer")
    assert offer_field["changeMessage"] == "%@" and "−50 %" in offer_field["value"]
    assert progress(db_session, now) == Progress(targeted=1, queued=1, failing=0)
    outbox.apple_attempts = 2  # APNs answered 5xx twice: it waits for a retry
    db_session.commit()
    assert progress(db_session, now) == Progress(targeted=1, queued=1, failing=1)
    outbox.apple_pending = outbox.google_pending = False
    outbox.apple_attempts = 0
    db_session.commit()
    reached = progress(db_session, now)
    assert (reached.queued, reached.failing, reached.delivered) == (0, 0, 1)
    assert cancel(db_session, later) and later.status == "cancelled"
    assert send_due(db_session, utcnow() + timedelta(hours=2)) == []  # cancelled: never sent
    assert not cancel(db_session, now)  # too late to cancel


def test_offers_leave_the_cards_when_they_end(db_session: Session) -> None:
    program = make_program(db_session, rules=RULES)
    card = make_card(db_session, program)
    now = utcnow()
    campaign = schedule(
        db_session, program, draft({"kind": "all"}, valid_until=now + timedelta(hours=1)), "m"
    )
    db_session.commit()
    assert send_due(db_session, now + timedelta(seconds=5)) == [campaign.id]
    db_session.refresh(card)
    version = card.content_version
    assert active_offers(db_session, card.id, now) != ()
    after = now + timedelta(hours=2)
    assert end_expired(db_session, after) == [campaign.id]
    assert campaign.status == "ended" and active_offers(db_session, card.id, after) == ()
    db_session.refresh(card)
    assert card.content_version == version + 1  # the passes drop the offer
    assert end_expired(db_session, after) == []


@pytest.fixture
def committed(engine: Engine) -> Iterator[tuple[Engine, int]]:
    """A program with 40 cards and a due campaign, committed (no rolled-back transaction)."""
    maker = make_sessionmaker(engine)
    slug = f"campaign-{uuid.uuid4().hex[:8]}"
    with maker() as session:
        program = make_program(session, slug=slug, rules=RULES)
        for _ in range(40):
            make_card(session, program)
        campaign = schedule(session, program, draft({"kind": "all"}), "m")
        session.commit()
        campaign_id = campaign.id
    yield engine, campaign_id
    with maker() as session:
        session.execute(delete(Program).where(Program.slug == slug))
        session.commit()


def test_two_workers_send_a_campaign_once(committed: tuple[Engine, int]) -> None:
    engine, campaign_id = committed
    maker = make_sessionmaker(engine)
    barrier = threading.Barrier(2)
    results: list[list[int]] = []

    def worker() -> None:
        with maker() as session:
            barrier.wait(timeout=30)
            results.append(send_due(session))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(len(sent) for sent in results) == [0, 1]
    assert [campaign_id] in results
    with maker() as session:
        offers = session.scalar(
            select(func.count()).select_from(CardOffer).where(CardOffer.campaign_id == campaign_id)
        )
        campaign = session.get(Campaign, campaign_id)
        assert offers == 40 and campaign is not None and campaign.targeted == 40
        assert campaign.status == "sent"


def test_an_offer_that_starts_later_is_sent_when_it_starts(db_session: Session) -> None:
    program = make_program(db_session, rules=RULES)
    make_card(db_session, program)
    now = utcnow()
    starts = now + timedelta(days=1)
    campaign = schedule(db_session, program, draft({"kind": "all"}, valid_from=starts), "m")
    db_session.commit()
    assert campaign.send_at == starts
    assert send_due(db_session, now + timedelta(minutes=1)) == []
    assert send_due(db_session, starts) == [campaign.id]


def test_a_campaign_over_before_it_could_be_sent_touches_no_card(db_session: Session) -> None:
    program = make_program(db_session, rules=RULES)
    card = make_card(db_session, program)
    db_session.flush()
    version = card.content_version
    now = utcnow()
    campaign = schedule(
        db_session, program, draft({"kind": "all"}, valid_until=now + timedelta(hours=1)), "m"
    )
    db_session.commit()
    assert send_due(db_session, now + timedelta(hours=2)) == []  # the scheduler was down
    db_session.refresh(campaign)
    db_session.refresh(card)
    assert campaign.status == "ended" and card.content_version == version
    assert db_session.scalar(select(func.count()).select_from(CardOffer)) == 0


def test_a_campaign_is_put_on_cards_range_by_range(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import passes.marketing.campaigns as campaigns

    monkeypatch.setattr(campaigns, "RANGE", 3)  # 8 cards: several transactions
    program = make_program(db_session, rules=RULES)
    cards = [make_card(db_session, program) for _ in range(8)]
    db_session.flush()
    versions = {card.id: card.content_version for card in cards}
    campaign = schedule(db_session, program, draft({"kind": "all"}), "m")
    db_session.commit()
    assert send_due(db_session, utcnow() + timedelta(seconds=5)) == [campaign.id]
    assert campaign.targeted == 8
    for card in cards:
        db_session.refresh(card)
        assert card.content_version == versions[card.id] + 1  # each bumped once
        assert db_session.get(WalletUpdate, card.id) is not None
