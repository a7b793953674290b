"""The facts a wallet card shows, independent of Apple or Google.

Both wallets render from these objects, so they always agree on balance, tier and offers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Location:
    """A place where the card becomes relevant on the lock screen."""

    latitude: float
    longitude: float
    relevant_text: str


@dataclass(frozen=True)
class Offer:
    """A current offer printed on the card (issue 6 fills these from campaigns)."""

    key: str
    title: str
    text: str
    has_image: bool = False  # a picture the wallets may show with it (Google does)


@dataclass(frozen=True)
class Branding:
    """What all cards of one program share. ``design_version`` changes whenever any of it does."""

    program_key: str
    design_version: int
    organization_name: str
    program_name: str
    description: str
    background_color: str
    foreground_color: str
    label_color: str
    logo_image: bytes | None
    icon_image: bytes | None
    strip_image: bytes | None
    points_label: str
    terms: str
    support_email: str | None
    support_phone: str | None
    website: str | None
    locations: tuple[Location, ...]
    # The shop's own words for the fixed labels ("tier", "member", "card_number"); a label not
    # given is the standard one, shown in the member's language.
    labels: tuple[tuple[str, str], ...] = ()

    def label(self, key: str, standard: str) -> str:
        return dict(self.labels).get(key) or standard


@dataclass(frozen=True)
class CardView:
    """One member's card as both wallets show it."""

    branding: Branding
    serial_number: str
    authentication_token: str
    card_number: str
    display_number: str
    barcode_payload: str
    member_name: str
    points_balance: int
    tier_name: str | None
    offers: tuple[Offer, ...]
    member_since: datetime
    updated_at: datetime
