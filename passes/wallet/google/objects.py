"""Google Wallet's ``loyaltyClass`` (one per program) and ``loyaltyObject`` (one per card), built
from the same :class:`~passes.wallet.view.CardView` as the Apple pass, so both wallets always show
the same facts.

Only fields that exist in Google's published schema are written (the test double validates every
body against the discovery document); ``hexBackgroundColor`` and the images live on the class,
the member's values on the object.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from passes.wallet.labels import RUSSIAN
from passes.wallet.view import Branding, CardView, Offer

__all__ = [
    "ImageUrls",
    "class_id",
    "essential_class",
    "essential_object",
    "loyalty_class",
    "loyalty_object",
    "object_id",
    "object_state_changes",
]

#: What Google allows after "<issuer id>." in an id.
_SUFFIX_FORBIDDEN = re.compile(r"[^A-Za-z0-9._-]")
MAX_LOCATIONS = 10  # Google shows at most ten merchant locations
TIER_LABEL = "Tier"


@dataclass(frozen=True)
class ImageUrls:
    """Public https addresses of the program's images (Google fetches them itself)."""

    logo: str
    hero: str | None


def _suffix(value: str) -> str:
    return _SUFFIX_FORBIDDEN.sub("_", value)


def class_id(issuer_id: str, program_key: str) -> str:
    """``<issuer id>.<program>``: one class per program."""
    return f"{issuer_id}.{_suffix(program_key)}"


def object_id(issuer_id: str, serial_number: str) -> str:
    """``<issuer id>.<card serial>``: the serial is already unique and never reused."""
    return f"{issuer_id}.{_suffix(serial_number)}"


def _localized(value: str, language: str) -> dict[str, Any]:
    """A LocalizedString; our fixed labels come with their translations (wallet.labels)."""
    localized: dict[str, Any] = {"defaultValue": {"language": language, "value": value}}
    if language == "en" and value in RUSSIAN:
        localized["translatedValues"] = [{"language": "ru", "value": RUSSIAN[value]}]
    return localized


def _image(uri: str, description: str, language: str) -> dict[str, Any]:
    return {"sourceUri": {"uri": uri}, "contentDescription": _localized(description, language)}


def loyalty_class(
    branding: Branding,
    *,
    issuer_id: str,
    images: ImageUrls,
    language: str = "en",
    callback_url: str | None = None,
) -> dict[str, Any]:
    """The program's class. ``reviewStatus`` is ``UNDER_REVIEW`` on every write, as Google asks
    (a class left in ``DRAFT`` cannot carry objects). With ``callback_url`` Google tells us when a
    member saves or deletes one of the class's objects."""
    body: dict[str, Any] = {
        "id": class_id(issuer_id, branding.program_key),
        "issuerName": branding.organization_name,
        "programName": branding.program_name,
        "localizedIssuerName": _localized(branding.organization_name, language),
        "localizedProgramName": _localized(branding.program_name, language),
        "programLogo": _image(images.logo, branding.program_name, language),
        "hexBackgroundColor": branding.background_color,
        "reviewStatus": "UNDER_REVIEW",
        "accountIdLabel": branding.label("card_number", "Card number"),
        "accountNameLabel": branding.label("member", "Member"),
        "localizedAccountIdLabel": _localized(
            branding.label("card_number", "Card number"), language
        ),
        "localizedAccountNameLabel": _localized(branding.label("member", "Member"), language),
        "multipleDevicesAndHoldersAllowedStatus": "ONE_USER_ALL_DEVICES",
        "merchantLocations": [
            {"latitude": place.latitude, "longitude": place.longitude}
            for place in branding.locations[:MAX_LOCATIONS]
        ],
    }
    if callback_url is not None:
        body["callbackOptions"] = {"url": callback_url}
    if images.hero is not None:
        body["heroImage"] = _image(images.hero, branding.program_name, language)
    if branding.website:
        body["homepageUri"] = {"uri": branding.website, "description": branding.program_name}
    modules = []
    if branding.terms:
        modules.append(
            {
                "id": "terms",
                "header": "Terms",
                "localizedHeader": _localized("Terms", language),
                "body": branding.terms,
            }
        )
    contact = "\n".join(
        value for value in (branding.support_phone, branding.support_email) if value
    )
    if contact:
        modules.append(
            {
                "id": "contact",
                "header": "Contact",
                "localizedHeader": _localized("Contact", language),
                "body": contact,
            }
        )
    body["textModulesData"] = modules
    return body


def _message(offer: Offer, language: str) -> dict[str, Any]:
    """An offer (or a notice of ours) as a message; a title of ours comes translated."""
    message: dict[str, Any] = {
        "id": f"offer-{_suffix(offer.key)}",
        "header": offer.title,
        "body": offer.text,
    }
    if offer.title in RUSSIAN:  # e.g. "Points expiring"; a shop's own titles stay as written
        message["localizedHeader"] = _localized(offer.title, language)
    return message


def loyalty_object(
    view: CardView,
    *,
    issuer_id: str,
    language: str = "en",
    offer_image: Callable[[Offer], str] | None = None,
) -> dict[str, Any]:
    """The member's object: card number, name, balance, tier and the QR code the till scans."""
    body: dict[str, Any] = {
        "id": object_id(issuer_id, view.serial_number),
        "classId": class_id(issuer_id, view.branding.program_key),
        "state": "ACTIVE",
        "accountId": view.display_number,
        "accountName": view.member_name,
        "loyaltyPoints": {
            "label": view.branding.points_label,
            "balance": {"int": view.points_balance},
        },
        "barcode": {
            "type": "QR_CODE",
            "value": view.barcode_payload,
            "alternateText": view.display_number,
        },
        "messages": [_message(offer, language) for offer in view.offers],
    }
    pictures = [offer for offer in view.offers if offer.has_image]
    if offer_image is not None and pictures:
        body["imageModulesData"] = [
            {
                "id": f"offer-{_suffix(offer.key)}",
                "mainImage": _image(offer_image(offer), offer.title, language),
            }
            for offer in pictures
        ]
    if view.tier_name:
        body["secondaryLoyaltyPoints"] = {
            "label": view.branding.label("tier", TIER_LABEL),
            "localizedLabel": _localized(view.branding.label("tier", TIER_LABEL), language),
            "balance": {"string": view.tier_name},
        }
    return body


def object_state_changes(
    previous: dict[str, Any] | None, current: dict[str, Any]
) -> dict[str, Any]:
    """The top-level fields of ``current`` that differ from ``previous`` (what was last sent):
    the body of a PATCH, which replaces each top-level field it names and leaves the rest.
    A field that disappeared is sent as null, which clears it."""
    if previous is None:
        return dict(current)
    changes = {key: value for key, value in current.items() if previous.get(key) != value}
    for key in previous.keys() - current.keys():
        changes[key] = None
    return changes


_ESSENTIAL_CLASS = (
    "id",
    "issuerName",
    "programName",
    "hexBackgroundColor",
    "reviewStatus",
)
_ESSENTIAL_OBJECT = (
    "id",
    "classId",
    "state",
    "accountId",
    "accountName",
    "loyaltyPoints",
    "secondaryLoyaltyPoints",
    "barcode",
)


def essential_class(body: dict[str, Any], *, with_callback: bool = False) -> dict[str, Any]:
    """What a card needs to show at all: for a save link that must carry the class itself.
    ``with_callback`` keeps the callback URL, so the save about to happen is reported."""
    fields = (*_ESSENTIAL_CLASS, "callbackOptions") if with_callback else _ESSENTIAL_CLASS
    essential = {key: body[key] for key in fields if key in body}
    essential["programLogo"] = {"sourceUri": body["programLogo"]["sourceUri"]}
    return essential


def essential_object(body: dict[str, Any]) -> dict[str, Any]:
    """Number, name, balance, tier and QR code: for a save link that must carry the object."""
    return {key: body[key] for key in _ESSENTIAL_OBJECT if key in body}
