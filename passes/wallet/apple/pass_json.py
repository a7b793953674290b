"""``pass.json`` for a loyalty card in Apple's ``storeCard`` style."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from passes.wallet.view import CardView

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


def pass_dict(view: CardView, identity: PassIdentity) -> dict[str, Any]:
    """The pass as a dict; field keys are unique across the pass, as Wallet requires."""
    brand = view.branding
    points_label = brand.points_label
    secondary: list[dict[str, Any]] = []
    if view.tier_name:
        secondary.append(
            {
                "key": "tier",
                "label": "Tier",
                "value": view.tier_name,
                "changeMessage": "Your tier is now %@",
            }
        )
    secondary.append({"key": "member", "label": "Member", "value": view.member_name})

    back: list[dict[str, Any]] = []
    for offer in view.offers:
        back.append({"key": f"offer_{offer.key}", "label": offer.title, "value": offer.text})
    if brand.terms:
        back.append({"key": "terms", "label": "Terms and conditions", "value": brand.terms})
    back.append(
        {
            "key": "member_since",
            "label": "Member since",
            "value": w3c_date(view.member_since),
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
        "serialNumber": view.serial_number,
        "organizationName": brand.organization_name,
        "description": brand.description,
        "logoText": brand.program_name,
        "backgroundColor": rgb(brand.background_color),
        "foregroundColor": rgb(brand.foreground_color),
        "labelColor": rgb(brand.label_color),
        "sharingProhibited": True,
        "storeCard": {
            "headerFields": [
                {"key": "header_points", "label": points_label, "value": view.points_balance}
            ],
            "primaryFields": [
                {
                    "key": "balance",
                    "label": points_label,
                    "value": view.points_balance,
                    "changeMessage": f"{points_label}: %@",
                }
            ],
            "secondaryFields": secondary,
            "auxiliaryFields": [
                {"key": "card_number", "label": "Card number", "value": view.display_number}
            ],
            "backFields": back,
        },
        "barcodes": [
            {
                "format": "PKBarcodeFormatQR",
                "message": view.barcode_payload,
                "messageEncoding": "iso-8859-1",
                "altText": view.display_number,
            }
        ],
    }
    if identity.web_service_url:
        document["webServiceURL"] = identity.web_service_url
        document["authenticationToken"] = view.authentication_token
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


def pass_json(view: CardView, identity: PassIdentity) -> bytes:
    """UTF-8 JSON bytes, compact (the bytes are hashed into the manifest as they are)."""
    return json.dumps(pass_dict(view, identity), ensure_ascii=False, separators=(",", ":")).encode()
