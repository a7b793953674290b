"""Keep pass versions honest: any change to what a pass shows bumps its version and time.

Done in one ``before_flush`` hook rather than in each code path, so a future feature that edits a
balance, a member's name or a program's colours cannot forget it. Wallet updates (Apple's
``passesUpdatedSince``, Last-Modified) are only as correct as these versions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from passes.db import utcnow
from passes.loyalty.models import Card, Member, Program, Store, Tier

# What each kind of row contributes to a pass, and whose version a change to it bumps.
# Program collections (stores, tiers) count too: adding or removing a store changes every pass.
WATCHED: dict[type, tuple[frozenset[str], Callable[[Any], Program | Card | None]]] = {
    Program: (
        frozenset(
            {
                "name",
                "organization_name",
                "description",
                "points_label",
                "background_color",
                "foreground_color",
                "label_color",
                "logo_image",
                "icon_image",
                "strip_image",
                "terms",
                "support_email",
                "support_phone",
                "website",
                "stores",
                "tiers",
            }
        ),
        lambda program: program,
    ),
    Store: (
        frozenset({"name", "latitude", "longitude", "relevant_text"}),
        lambda store: store.program,
    ),
    Tier: (frozenset({"name"}), lambda tier: tier.program),
    Card: (frozenset({"points_balance", "tier", "barcode_payload"}), lambda card: card),
    Member: (frozenset({"name"}), lambda member: member.card),
}


def bump_design(program: Program) -> None:
    program.design_version = (program.design_version or 0) + 1
    program.design_updated_at = utcnow()


def bump_card(card: Card) -> None:
    card.content_version = (card.content_version or 0) + 1
    card.pass_updated_at = utcnow()


@event.listens_for(Session, "before_flush")
def _bump_versions(session: Session, _context: Any, _instances: Any) -> None:
    targets: set[Program | Card] = set()
    for instance in session.dirty:
        watched = WATCHED.get(type(instance))
        if watched is None or not session.is_modified(instance):
            continue
        fields, owner = watched
        state = inspect(instance)
        if any(state.attrs[name].history.has_changes() for name in fields):
            target = owner(instance)
            if target is not None and target in session and target not in session.new:
                targets.add(target)
    for target in targets:
        if isinstance(target, Program):
            bump_design(target)
        else:
            bump_card(target)
