"""A card's Google Wallet object: created over REST when its member asks for the save link, and
remembered with the body we sent, so later updates PATCH only what changed."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passes.db import upsert_insert, utcnow
from passes.loyalty.models import Card, WalletUpdate
from passes.loyalty.view import card_view
from passes.push.models import GoogleClass, GoogleObject
from passes.wallet.google.client import GoogleWalletError, WalletApi
from passes.wallet.google.issuer import GoogleIssuer
from passes.wallet.google.objects import essential_object, object_state_changes

log = logging.getLogger(__name__)


def save_link(session: Session, card: Card, google: GoogleIssuer) -> str:
    """The "Add to Google Wallet" address for ``card``; commits what was written at Google.

    Preferred: class and object are written over REST first and the JWT names only their ids.
    If Google cannot be reached, the full object goes into the JWT (raises JwtTooLong if it does
    not fit) and is remembered anyway, so the sender keeps it current once it exists.
    """
    view = card_view(card)
    class_body = google.class_body(view.branding)
    object_body = google.object_body(view)
    known_class = session.get(GoogleClass, card.program_id)
    try:
        write_class(session, card.program_id, class_body, google.interactive_api)
        write_object(session, card, object_body, google.interactive_api)
        url = google.skinny_save_url(object_body)
    except GoogleWalletError as exc:
        session.rollback()
        log.warning("Google Wallet API unavailable for the save link (%s); sending a full JWT", exc)
        url = google.full_save_url(object_body, None if known_class else class_body)
        # Remember what the link carries; the sender completes the rest once Google answers.
        remember_object(session, card.id, essential_object(object_body))
        queue_google_update(session, card.id)
    _commit_ignoring_races(session)
    return url


def write_class(session: Session, program_id: int, body: dict[str, Any], api: WalletApi) -> None:
    """Create or bring up to date the program's class at Google."""
    known = session.get(GoogleClass, program_id)
    if known is None:
        api.insert_or_patch("loyaltyClass", body)
        session.add(GoogleClass(program_id=program_id, class_id=body["id"], sent_body=body))
    elif known.sent_body != body:
        api.patch(
            "loyaltyClass", body["id"], _with_review(object_state_changes(known.sent_body, body))
        )
        known.sent_body = body
        known.updated_at = utcnow()


def write_object(session: Session, card: Card, body: dict[str, Any], api: WalletApi) -> None:
    """Create or bring up to date the card's object at Google."""
    known = session.get(GoogleObject, card.id)
    if known is None:
        api.insert_or_patch("loyaltyObject", body)
        session.add(GoogleObject(card_id=card.id, object_id=body["id"], sent_body=body))
    elif known.sent_body != body:
        api.patch("loyaltyObject", body["id"], object_state_changes(known.sent_body, body))
        known.sent_body = body
        known.updated_at = utcnow()


def remember_object(session: Session, card_id: int, body: dict[str, Any]) -> None:
    known = session.get(GoogleObject, card_id)
    if known is None:
        session.add(GoogleObject(card_id=card_id, object_id=body["id"], sent_body=body))
    else:
        known.sent_body = body
        known.updated_at = utcnow()


def queue_google_update(session: Session, card_id: int) -> None:
    """Ask the Google sender (only) to bring this card's object up to date."""
    insert = upsert_insert(session.connection().dialect.name)
    session.execute(
        insert(WalletUpdate)
        .values(card_id=card_id, revision=1, apple_pending=False, google_pending=True)
        .on_conflict_do_update(
            index_elements=[WalletUpdate.card_id],
            set_={"google_pending": True, "revision": WalletUpdate.revision + 1},
        )
    )


def _with_review(changes: dict[str, Any]) -> dict[str, Any]:
    """Google asks for ``reviewStatus: UNDER_REVIEW`` on every class update."""
    return {**changes, "reviewStatus": "UNDER_REVIEW"}


def _commit_ignoring_races(session: Session) -> None:
    """Two clicks at once both create the rows: the second commit loses, Google has it anyway."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
