"""A card's Google Wallet object: created over REST when its member asks for the save link, and
remembered with the body we sent, so later updates PATCH only what changed.

No database transaction is open while Google answers: on SQLite every transaction holds the
write lock, and on PostgreSQL a transaction held across a network call pins rows and snapshots.
So callers read what they need, end the transaction, call Google, then record the result.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passes.db import upsert_insert, utcnow
from passes.loyalty.models import Card, WalletUpdate
from passes.loyalty.view import card_view
from passes.push.models import GoogleClass, GoogleObject
from passes.wallet.google.client import GoogleWalletError, Resource, WalletApi
from passes.wallet.google.issuer import GoogleIssuer
from passes.wallet.google.objects import essential_object, object_state_changes

log = logging.getLogger(__name__)

UNCONFIRMED = "_unconfirmed"  # in a sent body: only a save link's essentials went to Google


def save_link(session: Session, card: Card, google: GoogleIssuer) -> str:
    """The "Add to Google Wallet" address for ``card``; commits what was written at Google.

    Preferred: class and object are written over REST first and the JWT names only their ids.
    If Google cannot be reached, the object's essentials go into the JWT (raises JwtTooLong if
    they do not fit) and are remembered, and the sender completes the object later.
    """
    view = card_view(card)
    class_body = google.class_body(view.branding)
    object_body = google.object_body(view)
    program_id, card_id = card.program_id, card.id
    sent_class = sent_body(session, GoogleClass, program_id)
    sent_object = sent_body(session, GoogleObject, card_id)
    session.rollback()  # nothing held while Google answers
    # Only a fallback link's essentials ever went out (and the sender has not completed them,
    # e.g. because the member deleted the card): write the whole object, as for a new one.
    unconfirmed = sent_object is not None and bool(sent_object.get(UNCONFIRMED))
    try:
        if put_resource(google.interactive_api, "loyaltyClass", class_body, sent_class):
            remember(session, GoogleClass, program_id, class_body)
        if put_resource(
            google.interactive_api,
            "loyaltyObject",
            object_body,
            None if unconfirmed else sent_object,
        ):
            remember(session, GoogleObject, card_id, object_body)
        url = google.skinny_save_url(object_body)
    except GoogleWalletError as exc:
        log.warning("Google Wallet API unavailable for the save link (%s); sending a full JWT", exc)
        url = google.full_save_url(object_body, None if sent_class else class_body)
        if sent_object is None:
            # Google gets only the link's essentials: the sender sends the whole object later.
            remember(
                session, GoogleObject, card_id, {**essential_object(object_body), UNCONFIRMED: True}
            )
    # The card may have changed while Google answered: let the sender compare (usually a no-op).
    queue_google_update(session, card_id)
    try:
        session.commit()
    except IntegrityError:  # two clicks at once: the other one recorded it
        session.rollback()
    return url


def put_resource(
    api: WalletApi, resource: Resource, body: dict[str, Any], sent: dict[str, Any] | None
) -> bool:
    """Make Google hold ``body``, given what we last sent (None: never). True if a request
    went out. A class update carries ``reviewStatus: UNDER_REVIEW``, as Google asks."""
    if sent is None:
        api.insert_or_patch(resource, body)
        return True
    changes = object_state_changes(sent, body)
    if not changes:
        return False
    if resource == "loyaltyClass":
        changes["reviewStatus"] = "UNDER_REVIEW"
    try:
        api.patch(resource, str(body["id"]), changes)
    except GoogleWalletError as exc:
        if exc.status != 404:
            raise
        api.insert_or_patch(resource, body)  # Google lost it: write it whole again
    return True


def sent_body(
    session: Session, model: type[GoogleClass] | type[GoogleObject], key: int
) -> dict[str, Any] | None:
    """What we last sent Google for this program's class or card's object (None: nothing)."""
    known = cast("GoogleClass | GoogleObject | None", session.get(model, key))
    return dict(known.sent_body) if known is not None else None


def remember(
    session: Session,
    model: type[GoogleClass] | type[GoogleObject],
    key: int,
    body: dict[str, Any],
) -> None:
    """Record ``body`` as what Google now holds (insert or update, not committed)."""
    known = cast("GoogleClass | GoogleObject | None", session.get(model, key))
    if known is not None:
        known.sent_body = body
        known.updated_at = utcnow()
    elif model is GoogleClass:
        session.add(GoogleClass(program_id=key, class_id=body["id"], sent_body=body))
    else:
        session.add(GoogleObject(card_id=key, object_id=body["id"], sent_body=body))


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
