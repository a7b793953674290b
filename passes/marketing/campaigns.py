"""Scheduling, sending, cancelling and ending campaigns.

Sending is done by the scheduler (:func:`send_due`), safe with several workers: a campaign is
claimed by one conditional UPDATE, and its offers are written, its cards' versions bumped and
their wallet updates queued by three statements inside the database, whatever the number of
cards. A worker that dies mid-send leaves a claim that another takes over after
``CLAIM_SECONDS``; writing the offers again is harmless (one per card and campaign).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from passes.db import upsert_insert, utcnow
from passes.loyalty.ledger import rules_of
from passes.loyalty.models import Card, Member, Program, WalletUpdate
from passes.loyalty.pass_versions import change_stamp, next_pass_time, wallet_upsert_from
from passes.marketing.models import Campaign, CardOffer
from passes.marketing.segments import SegmentError, parse_segment, segment_condition
from passes.text import N_, Text
from passes.wallet.view import Offer
from passes.webhooks.events import campaign_finished

MAX_TITLE = 60
MAX_TEXT = 300
CLAIM_SECONDS = 600  # a claim not renewed for this long is a dead worker's: taken over
RANGE = 50_000  # card ids per transaction when a campaign is put on cards
LIVE = ("sending", "sent")  # campaigns whose offers are on cards


class CampaignError(ValueError):
    """A campaign that cannot be scheduled as asked; ``field`` names the form field, ``text``
    what is wrong (``message``: the same in English)."""

    def __init__(self, field: str, text: Text | str) -> None:
        self.field = field
        self.text = text if isinstance(text, Text) else Text(text)
        self.message = str(self.text)
        super().__init__(f"{field}: {self.message}")


@dataclass(frozen=True)
class Draft:
    """A campaign as the marketer describes it (times timezone-aware)."""

    title: str
    text: str
    segment: dict[str, Any]
    valid_from: datetime
    valid_until: datetime
    send_at: datetime
    image: bytes | None = None  # PNG, already re-encoded (wallet.apple.images.reencode_upload)


def schedule(
    session: Session, program: Program, draft: Draft, created_by: str, now: datetime | None = None
) -> Campaign:
    """A scheduled campaign, checked; the caller commits. A ``send_at`` not in the future means
    now: the scheduler's next run sends it."""
    now = now or utcnow()
    segment = checked(program, draft, now)
    campaign = Campaign(
        program_id=program.id,
        title=draft.title.strip(),
        text=draft.text.strip(),
        segment=segment,
        valid_from=draft.valid_from,
        valid_until=draft.valid_until,
        # Sent when its offer starts to show, never before: a card changed before the offer is
        # visible would not change again when it becomes so.
        send_at=max(draft.send_at, draft.valid_from, now),
        status="scheduled",
        created_by=created_by,
        created_at=now,
        image=draft.image,
    )
    session.add(campaign)
    session.flush()
    return campaign


def checked(program: Program, draft: Draft, now: datetime) -> dict[str, Any]:
    """The draft's clean segment, or CampaignError naming the first thing wrong."""
    if not draft.title.strip() or len(draft.title.strip()) > MAX_TITLE:
        raise CampaignError(
            "title", Text(N_("give a title of 1 to %(most)s characters"), {"most": MAX_TITLE})
        )
    if not draft.text.strip() or len(draft.text.strip()) > MAX_TEXT:
        raise CampaignError(
            "text", Text(N_("give a text of 1 to %(most)s characters"), {"most": MAX_TEXT})
        )
    for field in ("valid_from", "valid_until", "send_at"):
        if getattr(draft, field).tzinfo is None:
            raise CampaignError(field, Text(N_("needs a time zone")))
    if draft.valid_until <= draft.valid_from:
        raise CampaignError("valid_until", Text(N_("must be after the start of validity")))
    if draft.valid_until <= max(now, draft.send_at):
        raise CampaignError("valid_until", Text(N_("the offer would have ended before it is sent")))
    try:
        return parse_segment(draft.segment, rules_of(program))
    except SegmentError as exc:
        raise CampaignError(f"segment.{exc.field}", exc.text) from exc


def reach(session: Session, program: Program, segment: dict[str, Any], now: datetime) -> int:
    """How many cards the segment selects now (the dry run)."""
    condition = segment_condition(segment, program.id, rules_of(program), now)
    count = session.scalar(
        select(func.count())
        .select_from(Card)
        .join(Member, Member.id == Card.member_id)
        .where(condition)
    )
    return int(count or 0)


def cancel(session: Session, campaign: Campaign) -> bool:
    """Cancel a campaign that has not started; False when it already has (or was cancelled)."""
    cancelled = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status == "scheduled")
        .values(status="cancelled")
        .execution_options(synchronize_session=False)
    )
    session.refresh(campaign)
    return bool(cancelled.rowcount)  # type: ignore[attr-defined]


def send_due(session: Session, now: datetime | None = None) -> list[int]:
    """Send every campaign due by ``now`` that this worker can claim; their ids. Commits."""
    now = now or utcnow()
    # Due but already over (the scheduler was down): ended without touching a card.
    session.execute(
        update(Campaign)
        .where(Campaign.status == "scheduled", Campaign.valid_until <= now)
        .values(status="ended")
        .execution_options(synchronize_session=False)
    )
    due = session.scalars(
        select(Campaign.id)
        .where(
            Campaign.send_at <= now,
            or_(
                Campaign.status == "scheduled",
                (Campaign.status == "sending")
                & (Campaign.sent_at < now - timedelta(seconds=CLAIM_SECONDS)),
            ),
        )
        .order_by(Campaign.send_at)
    ).all()
    session.commit()
    sent: list[int] = []
    for campaign_id in due:
        if not _claim(session, campaign_id, now):
            continue  # another worker has it
        session.commit()
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        targeted = _put_on_cards(session, campaign, now)
        campaign.status, campaign.targeted = "sent", targeted
        program = session.get(Program, campaign.program_id)
        assert program is not None
        campaign_finished(  # the shop's webhooks hear of it with the same commit
            session,
            program,
            {
                "campaign": {
                    "id": campaign.id,
                    "title": campaign.title,
                    "targeted": targeted,
                    "valid_from": campaign.valid_from.isoformat(),
                    "valid_until": campaign.valid_until.isoformat(),
                }
            },
        )
        session.commit()
        sent.append(campaign_id)
    return sent


def _claim(session: Session, campaign_id: int, now: datetime) -> bool:
    claimed = session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            or_(
                Campaign.status == "scheduled",
                (Campaign.status == "sending")
                & (Campaign.sent_at < now - timedelta(seconds=CLAIM_SECONDS)),
            ),
        )
        .values(status="sending", sent_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def _put_on_cards(session: Session, campaign: Campaign, now: datetime) -> int:
    """Write the campaign's offer onto every card of its segment, bump those cards' pass
    versions and queue their wallet updates, inside the database, no card loaded; the count.

    Done and committed by ranges of card ids, so that no transaction holds many cards (a till
    buying on one of them would wait), and each range renews the claim. A worker taking over
    a dead one's claim starts again: offers are not written twice, though the cards of ranges
    already done get one more version bump (and push)."""
    program = campaign.program
    condition = segment_condition(campaign.segment, program.id, rules_of(program), now)
    low, high = session.execute(
        select(func.min(Card.id), func.max(Card.id)).where(Card.program_id == program.id)
    ).one()
    for start in range(low or 0, (high or -1) + 1, RANGE):
        cards = (start, start + RANGE)
        connection = session.connection()
        insert = upsert_insert(connection.dialect.name)
        targets = (
            select(literal(campaign.id), Card.id, literal(now, type_=CardOffer.created_at.type))
            .join(Member, Member.id == Card.member_id)
            .where(condition, Card.id >= cards[0], Card.id < cards[1])
        )
        connection.execute(
            insert(CardOffer)
            .from_select(["campaign_id", "card_id", "created_at"], targets)
            .on_conflict_do_nothing()
        )
        touch_cards(connection, campaign.id, program, now, cards=cards)
        connection.execute(  # the claim's heartbeat
            update(Campaign).where(Campaign.id == campaign.id).values(sent_at=utcnow())
        )
        session.commit()
    count = session.scalar(
        select(func.count()).select_from(CardOffer).where(CardOffer.campaign_id == campaign.id)
    )
    return int(count or 0)


def touch_cards(
    connection: Connection,
    campaign_id: int,
    program: Program,
    now: datetime,
    cards: tuple[int, int] | None = None,
) -> None:
    """Bump the pass version of every card that carries ``campaign_id``'s offer (with an id in
    ``cards``, [from, to), when given) and queue its wallet update (an offer arrived, or left)."""
    carrying = [CardOffer.campaign_id == bindparam("campaign")]
    if cards is not None:
        carrying += [CardOffer.card_id >= cards[0], CardOffer.card_id < cards[1]]
    on_cards = select(CardOffer.card_id).where(*carrying)
    # The pass's time moves past the design's and the card's own, in whole seconds.
    floor = next_pass_time(program.design_updated_at)
    stamp = change_stamp(connection)
    connection.execute(
        update(Card)
        .where(Card.id.in_(on_cards))
        .values(
            content_version=Card.content_version + 1,
            change_seq=stamp,
            pass_updated_at=_LATER[connection.dialect.name](floor),
        )
        .execution_options(synchronize_session=False),
        {"campaign": campaign_id},
    )
    queued = wallet_upsert_from(
        connection.dialect.name,
        select(CardOffer.card_id).where(*carrying),
        literal(now, type_=WalletUpdate.requested_at.type),
    )
    connection.execute(queued, {"campaign": campaign_id})


def _later_postgresql(floor: datetime) -> Any:
    return func.greatest(
        literal(floor, type_=Card.pass_updated_at.type),
        func.date_trunc("second", Card.pass_updated_at) + literal_column("interval '1 second'"),
    )


def _later_sqlite(floor: datetime) -> Any:
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' text, which sorts as the times do.
    later = func.strftime("%Y-%m-%d %H:%M:%S", Card.pass_updated_at, "+1 second") + ".000000"
    return func.max(literal(floor, type_=Card.pass_updated_at.type), later)


_LATER = {"postgresql": _later_postgresql, "sqlite": _later_sqlite}


def end_expired(session: Session, now: datetime | None = None) -> list[int]:
    """Take the offers of campaigns past their validity off their cards (a version bump each);
    the campaigns become ``ended``. Commits per campaign."""
    now = now or utcnow()
    ended: list[int] = []
    for campaign in session.scalars(
        select(Campaign).where(Campaign.status == "sent", Campaign.valid_until <= now)
    ).all():
        claimed = session.execute(  # one worker ends it (and bumps its cards) once
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status == "sent")
            .values(status="ended")
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            session.rollback()
            continue
        set_committed_value(campaign, "status", "ended")
        touch_cards(session.connection(), campaign.id, campaign.program, now)
        session.commit()
        ended.append(campaign.id)
    return ended


def active_offers(session: Session, card_id: int, now: datetime | None = None) -> tuple[Offer, ...]:
    """The offers on a card now, newest first."""
    now = now or utcnow()
    rows = session.execute(
        select(Campaign.id, Campaign.title, Campaign.text, Campaign.image.is_not(None))
        .join(CardOffer, CardOffer.campaign_id == Campaign.id)
        .where(
            CardOffer.card_id == card_id,
            Campaign.status.in_(LIVE),
            Campaign.valid_from <= now,
            Campaign.valid_until > now,
        )
        .order_by(Campaign.valid_from.desc(), Campaign.id.desc())
    ).all()
    return tuple(
        Offer(key=f"c{row[0]}", title=row[1], text=row[2], has_image=bool(row[3])) for row in rows
    )


@dataclass(frozen=True)
class Progress:
    """How far a campaign's wallet updates got: cards targeted, still queued (of which
    ``failing``: a wallet refused or did not answer, and they wait for a retry), delivered."""

    targeted: int
    queued: int
    failing: int = 0

    @property
    def delivered(self) -> int:
        return self.targeted - self.queued


def progress(session: Session, campaign: Campaign) -> Progress:
    """Cards of the campaign whose wallet update is still pending (either wallet)."""
    targeted = campaign.targeted or 0
    apple_failing = WalletUpdate.apple_pending & (WalletUpdate.apple_attempts > 0)
    google_failing = WalletUpdate.google_pending & (WalletUpdate.google_attempts > 0)
    queued, failing = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((or_(apple_failing, google_failing), 1), else_=0)), 0),
        )
        .select_from(CardOffer)
        .join(WalletUpdate, WalletUpdate.card_id == CardOffer.card_id)
        .where(
            CardOffer.campaign_id == campaign.id,
            or_(WalletUpdate.apple_pending, WalletUpdate.google_pending),
        )
    ).one()
    return Progress(targeted, int(queued or 0), int(failing or 0))
