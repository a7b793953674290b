"""Turn a stored card into the wallet-neutral CardView."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.orm import object_session

from passes.loyalty.card_numbers import format_card_number
from passes.loyalty.models import Card, Program, Store
from passes.loyalty.program_document import ProgramDocument, StoreSpec
from passes.wallet.view import Branding, CardView, Location, Offer


def branding_of(program: Program) -> Branding:
    """The program-wide part of every card of ``program``."""
    return _branding(
        program,
        program.slug,
        program.design_version,
        (program.logo_image, program.icon_image, program.strip_image),
        program.stores,
        program.field_labels or {},
    )


def branding_of_document(document: ProgramDocument, design_version: int = 0) -> Branding:
    """What cards would share if ``document`` were saved: the designer's preview of a draft."""
    images = document.images
    return _branding(
        document,
        document.slug,
        design_version,
        (images.get("logo"), images.get("icon"), images.get("strip")),
        document.stores,
        document.field_labels,
    )


def _branding(
    source: Program | ProgramDocument,
    key: str,
    version: int,
    images: tuple[bytes | None, bytes | None, bytes | None],
    stores: Sequence[Store | StoreSpec],
    labels: Mapping[str, str],
) -> Branding:
    locations = tuple(
        Location(
            latitude=store.latitude,
            longitude=store.longitude,
            relevant_text=store.relevant_text or f"{source.name}: show your card at {store.name}",
        )
        for store in stores
        if store.latitude is not None and store.longitude is not None
    )
    logo, icon, strip = images
    return Branding(
        program_key=key,
        design_version=version,
        organization_name=source.organization_name,
        program_name=source.name,
        description=source.description,
        background_color=source.background_color,
        foreground_color=source.foreground_color,
        label_color=source.label_color,
        logo_image=logo,
        icon_image=icon,
        strip_image=strip,
        points_label=source.points_label,
        terms=source.terms,
        support_email=source.support_email,
        support_phone=source.support_phone,
        website=source.website,
        locations=locations,
        labels=tuple(sorted((key, text) for key, text in labels.items() if text)),
    )


EXPIRY_NOTICE_TITLE = "Points expiring"


def _notices(card: Card) -> tuple[Offer, ...]:
    """The card's own notices, shown like offers and first (the newest thing to announce).
    The expiry notice is worked out from the lots now (what was warned and is still to expire);
    the card's stored copy is what makes the pass change when it appears or goes."""
    from passes.loyalty.ledger import expiry_notice

    session = object_session(card)
    if not card.expiry_notice or session is None:
        return ()
    notice = expiry_notice(session, card)
    return (Offer("expiry", EXPIRY_NOTICE_TITLE, notice),) if notice else ()


def _offers(card: Card) -> tuple[Offer, ...]:
    """The campaigns' offers on the card now (read through the card's session)."""
    from passes.marketing.campaigns import active_offers  # marketing builds on loyalty

    session = object_session(card)
    return active_offers(session, card.id) if session is not None else ()


def card_view(card: Card) -> CardView:
    """Everything a wallet needs to draw ``card``; the pass changes iff this changes."""
    program = card.program
    updated_at = max(card.pass_updated_at, program.design_updated_at)
    return CardView(
        branding=branding_of(program),
        serial_number=card.serial_number,
        authentication_token=card.authentication_token,
        card_number=card.number,
        display_number=format_card_number(card.number),
        barcode_payload=card.barcode_payload,
        member_name=card.member.name,
        points_balance=card.points_balance,
        tier_name=program.tier_name(card.tier_key),
        offers=_notices(card) + _offers(card),
        member_since=card.created_at,
        updated_at=updated_at,
    )
