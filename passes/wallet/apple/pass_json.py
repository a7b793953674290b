"""``pass.json`` for a loyalty card in Apple's ``storeCard`` style."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from passes.wallet.view import Branding, CardView, Offer

MAX_LOCATIONS = 10  # Wallet ignores a pass's locations beyond the first ten


@dataclass(frozen=True)
class PassIdentity:
    """The issuer's side of every pass: Apple identifiers and where devices ask for updates."""

    pass_type_identifier: str
    team_identifier: str
    web_service_url: str | None  # https only; None disables self-updating passes (development)


def w3c_date(moment: datetime) -> str:
    """W3C date-time with seconds and an explicit offset, no fractions (Wallet rejects some)."""
    if moment.tzinfo is None:
        raise ValueError("pass dates must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def rgb(colour: str) -> str:
    """``#rrggbb`` → ``rgb(r, g, b)``, the only colour form pass.json accepts."""
    value = colour.lstrip("#")
    red, green, blue = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgb({red}, {green}, {blue})"


@dataclass(frozen=True)
class Shape:
    """What decides the structure of pass.json beyond the program design: tier and offers."""

    has_tier: bool
    offers: tuple[Offer, ...]


def shape_of(view: CardView) -> Shape:
    return Shape(has_tier=view.tier_name is not None, offers=view.offers)


CARD_VALUE_KEYS = ("serial", "token", "balance", "tier", "member", "number", "payload", "since")


def card_values(view: CardView) -> dict[str, str | int]:
    """The per-card values of pass.json, keyed by the names the template's holes carry."""
    return {
        "serial": view.serial_number,
        "token": view.authentication_token,
        "balance": view.points_balance,
        "tier": view.tier_name or "",
        "member": view.member_name,
        "number": view.display_number,
        "payload": view.barcode_payload,
        "since": w3c_date(view.member_since),
    }


def _document(
    brand: Branding, identity: PassIdentity, shape: Shape, values: Mapping[str, object]
) -> dict[str, Any]:
    points_label = brand.points_label
    secondary: list[dict[str, Any]] = []
    if shape.has_tier:
        secondary.append(
            {
                "key": "tier",
                "label": brand.label("tier", "Tier"),
                "value": values["tier"],
                "changeMessage": "Your tier is now %@",
            }
        )
    secondary.append(
        {"key": "member", "label": brand.label("member", "Member"), "value": values["member"]}
    )

    back: list[dict[str, Any]] = []
    for position, offer in enumerate(shape.offers):
        field = {"key": f"offer_{offer.key}", "label": offer.title, "value": offer.text}
        if position == 0:  # the newest offer: its arrival shows on the lock screen
            field.update(key="offer", changeMessage="%@")
        back.append(field)
    if brand.terms:
        back.append({"key": "terms", "label": "Terms and conditions", "value": brand.terms})
    back.append(
        {
            "key": "member_since",
            "label": "Member since",
            "value": values["since"],
            "dateStyle": "PKDateStyleMedium",
            "timeStyle": "PKDateStyleNone",
        }
    )
    support = [line for line in (brand.support_email, brand.support_phone, brand.website) if line]
    if support:
        back.append({"key": "support", "label": "Support", "value": "\n".join(support)})

    document: dict[str, Any] = {
        "formatVersion": 1,
        "passTypeIdentifier": identity.pass_type_identifier,
        "teamIdentifier": identity.team_identifier,
        "serialNumber": values["serial"],
        "organizationName": brand.organization_name,
        "description": brand.description,
        "logoText": brand.program_name,
        "backgroundColor": rgb(brand.background_color),
        "foregroundColor": rgb(brand.foreground_color),
        "labelColor": rgb(brand.label_color),
        "sharingProhibited": True,
        "storeCard": {
            "headerFields": [
                {"key": "header_points", "label": points_label, "value": values["balance"]}
            ],
            "primaryFields": [
                {
                    "key": "balance",
                    "label": points_label,
                    "value": values["balance"],
                    "changeMessage": f"{points_label}: %@",
                }
            ],
            "secondaryFields": secondary,
            "auxiliaryFields": [
                {
                    "key": "card_number",
                    "label": brand.label("card_number", "Card number"),
                    "value": values["number"],
                }
            ],
            "backFields": back,
        },
        "barcodes": [
            {
                "format": "PKBarcodeFormatQR",
                "message": values["payload"],
                "messageEncoding": "iso-8859-1",
                "altText": values["number"],
            }
        ],
    }
    if identity.web_service_url:
        document["webServiceURL"] = identity.web_service_url
        document["authenticationToken"] = values["token"]
    if brand.locations:
        document["locations"] = [
            {
                "latitude": location.latitude,
                "longitude": location.longitude,
                "relevantText": location.relevant_text,
            }
            for location in brand.locations[:MAX_LOCATIONS]
        ]
    return document


def pass_dict(view: CardView, identity: PassIdentity) -> dict[str, Any]:
    """The pass as a dict; field keys are unique across the pass, as Wallet requires."""
    return _document(view.branding, identity, shape_of(view), card_values(view))


def pass_json(view: CardView, identity: PassIdentity) -> bytes:
    """UTF-8 JSON bytes of :func:`pass_dict` (the reference; issuers use PassJsonTemplate)."""
    return _dumps(pass_dict(view, identity)).encode()


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


_HOLE = re.compile(r'"\\u0000(\w+)\\u0000"')
_encode_string: Callable[[str], str] = json.encoder.encode_basestring


class PassJsonTemplate:
    """pass.json of one design and shape, serialised once, with holes for the per-card values.

    json.dumps of a whole pass costs about as much as a tenth of its RSA signature; filling holes
    with encoded strings costs a few microseconds. ``render`` is byte-identical to
    :func:`pass_json` (tested), so :func:`pass_dict` remains the one description of the format.
    """

    def __init__(self, branding: Branding, identity: PassIdentity, shape: Shape) -> None:
        markers = {name: f"\x00{name}\x00" for name in CARD_VALUE_KEYS}
        text = _dumps(_document(branding, identity, shape, markers))
        parts = _HOLE.split(text)
        self._literals = parts[0::2]
        self._holes = parts[1::2]

    def render(self, view: CardView) -> bytes:
        values = card_values(view)
        literals = self._literals
        out = [literals[0]]
        for index, name in enumerate(self._holes, start=1):
            value = values[name]
            out.append(_encode_string(value) if isinstance(value, str) else str(int(value)))
            out.append(literals[index])
        return "".join(out).encode()
