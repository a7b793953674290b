"""Turn a stored card into the wallet-neutral CardView."""

from __future__ import annotations

from sqlalchemy.orm import object_session

from passes.loyalty.card_numbers import format_card_number
from passes.loyalty.models import Card, Program
from passes.wallet.view import Branding, CardView, Location, Offer


def branding_of(program: Program) -> Branding:
    """The program-wide part of every card of ``program``."""
    locations = tuple(
        Location(
            latitude=store.latitude,
            longitude=store.longitude,
            relevant_text=store.relevant_text or f"{program.name}: show your card at {store.name}",
        )
        for store in program.stores
        if store.latitude is not None and store.longitude is not None
    )
    return Branding(
        program_key=program.slug,
        design_version=program.design_version,
        organization_name=program.organization_name,
        program_name=program.name,
        description=program.description,
        background_color=program.background_color,
        foreground_color=program.foreground_color,
        label_color=program.label_color,
        logo_image=program.logo_image,
        icon_image=program.icon_image,
        strip_image=program.strip_image,
        points_label=program.points_label,
        terms=program.terms,
        support_email=program.support_email,
        support_phone=program.support_phone,
        website=program.website,
        locations=locations,
    )


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
        offers=_offers(card),
        member_since=card.created_at,
        updated_at=updated_at,
    )
