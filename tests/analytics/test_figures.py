"""The program's figures from real data: cards joining on given days, purchases through the
ledger, a redemption, an expiry, wallets and a campaign; days are the program's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from factories import TIERS, buy, make_card, make_program
from passes.analytics.figures import all_tables, daily, day_starts, overview, tiers
from passes.loyalty import ledger
from passes.loyalty.models import LedgerEntry
from passes.marketing.campaigns import Draft, schedule
from passes.push.models import AppleDevice, AppleRegistration

# Noon in Moscow (UTC+3) on 10 March 2026; "today" there is the 10th.
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
RULES = {"currency": "RUB", "earning": {"points": 1, "per_amount": 100}, "tiers": TIERS}


def test_local_days_begin_at_the_programs_midnight() -> None:
    from zoneinfo import ZoneInfo

    starts = day_starts(ZoneInfo("Europe/Moscow"), NOW.date(), 2)
    assert starts == [
        datetime(2026, 3, 8, 21, 0, tzinfo=UTC),
        datetime(2026, 3, 9, 21, 0, tzinfo=UTC),
        datetime(2026, 3, 10, 21, 0, tzinfo=UTC),
    ]


def test_figures_from_members_purchases_points_wallets_and_campaigns(db_session: Session) -> None:
    program = make_program(db_session, rules=RULES)
    other = make_program(db_session, rules=RULES)
    old, yesterday, late, today = (make_card(db_session, program) for _ in range(4))
    make_card(db_session, other)  # never counted
    # joined: long ago, yesterday, yesterday 23:30 Moscow (20:30 UTC), today
    old.created_at = NOW - timedelta(days=100)
    yesterday.created_at = NOW - timedelta(days=1)
    late.created_at = datetime(2026, 3, 9, 20, 30, tzinfo=UTC)
    today.created_at = NOW - timedelta(hours=1)
    buy(db_session, old, 10_000, NOW - timedelta(days=1))  # 100 points, yesterday
    buy(db_session, old, 30_001, NOW - timedelta(minutes=5))  # 300 points, today
    buy(db_session, today, 5_000, NOW - timedelta(minutes=1))  # 50 points, today
    buy(db_session, late, 7_000, NOW - timedelta(days=40))  # outside the 30 days
    ledger.adjust(db_session, old, points=-20, reason="correction", actor="t", now=NOW)
    db_session.add(
        LedgerEntry(
            program_id=program.id,
            card_id=late.id,
            kind="expiry",
            points=-5,
            source="expiry",
            created_at=NOW,
        )
    )
    late.points_balance -= 5
    device = AppleDevice(library_identifier="lib", push_token="cd" * 32)
    db_session.add(device)
    db_session.flush()
    db_session.add_all(
        [AppleRegistration(device_id=device.id, card_id=card.id) for card in (old, today)]
    )
    old.tier_key = "gourmet"
    draft = Draft("Offer", "Text", {"kind": "all"}, NOW, NOW + timedelta(days=1), NOW)
    campaign = schedule(db_session, program, draft, "m@example.com", NOW)
    db_session.commit()

    table = daily(db_session, program, days=3, now=NOW)
    assert table.columns == ["day", "joined", "members", "purchases", "paid", "average_check"]
    assert table.rows == [
        ["2026-03-08", 0, 1, 0, 0, 0],
        ["2026-03-09", 2, 3, 1, 10_000, 10_000],
        ["2026-03-10", 1, 4, 2, 35_001, 17_501],  # (30,001 + 5,000) / 2, rounded half up
    ]

    figures = dict(overview(db_session, program, now=NOW).rows)
    assert figures["members"] == 4
    assert figures["cards_in_apple_wallet"] == 2
    assert figures["cards_offered_to_google_wallet"] == 0
    assert figures["active_members_30_days"] == 2  # old and today; late bought 40 days ago
    assert figures["purchases_30_days"] == 3
    assert figures["purchases_per_active_member_30_days"] == "1.50"
    assert figures["average_check_30_days"] == (10_000 + 30_001 + 5_000 + 1) // 3
    welcome = sum(
        e.points
        for e in db_session.query(LedgerEntry).filter_by(kind="welcome_bonus")
        if e.program_id == program.id
    )
    assert figures["points_issued"] == 100 + 300 + 50 + 70 + welcome
    assert figures["points_redeemed"] == 20 and figures["points_expired"] == 5
    balances = sum(c.points_balance for c in (old, yesterday, late, today))
    assert figures["points_outstanding"] == balances

    assert tiers(db_session, program).rows == [["Любитель", 3], ["Гурман", 1]]
    by_name = {table.name: table for table in all_tables(db_session, program, now=NOW)}
    assert set(by_name) == {"overview", "daily", "tiers", "campaigns"}
    assert by_name["campaigns"].rows == [
        ["Offer", "scheduled", campaign.send_at.isoformat(), "", "", ""]
    ]


def test_a_program_without_anything_yet(db_session: Session) -> None:
    program = make_program(db_session, rules={"currency": "RUB"})
    db_session.commit()
    assert daily(db_session, program, days=2, now=NOW).rows == [
        ["2026-03-09", 0, 0, 0, 0, 0],
        ["2026-03-10", 0, 0, 0, 0, 0],
    ]
    figures = dict(overview(db_session, program, now=NOW).rows)
    assert figures["members"] == 0 and figures["purchases_per_active_member_30_days"] == "0"
    assert tiers(db_session, program).rows == []
