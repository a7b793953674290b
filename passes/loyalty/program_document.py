"""A program as one JSON document: branding, images, stores and rules.

The same parser serves ``flask passes program import``, ``PUT /api/v1/programs/<slug>`` and (later)
the designer, so a document valid in one place is valid everywhere, and every error names its field
path (``stores[1].latitude``, ``rules.tiers.levels[2].threshold``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from passes.loyalty.ledger import sync_reward_stock
from passes.loyalty.models import Program, Store
from passes.loyalty.rules import ProgramRules, RulesError, parse_rules, rules_to_dict
from passes.text import N_, Text
from passes.wallet.apple.images import ImageError, render_pass_images, validate_colour

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
PREFIX = re.compile(r"^[0-9]{2,6}$")
IMAGE_NAMES = ("logo", "icon", "strip")
LABEL_KEYS = ("tier", "member", "card_number")  # the cards' fixed labels a shop may rename
MAX_STORES = 500
TOP_LEVEL = {
    "format",
    "slug",
    "name",
    "organization_name",
    "description",
    "card_prefix",
    "points_label",
    "colors",
    "images",
    "terms",
    "labels",
    "support",
    "stores",
    "rules",
}
FORMAT = "loyalpass.program/1"


class ProgramDocumentError(ValueError):
    """Every problem of a document at once, as (field path, message) pairs: ``errors`` with the
    messages in English (the API and the CLI say them), ``problems`` with them as
    :class:`~passes.text.Text` for a page to translate (the designer)."""

    def __init__(self, errors: Sequence[tuple[str, Text | str]]) -> None:
        self.problems: list[tuple[str, Text]] = [
            (path, message if isinstance(message, Text) else Text(message))
            for path, message in errors
        ]
        self.errors: list[tuple[str, str]] = [(path, str(text)) for path, text in self.problems]
        super().__init__(
            "; ".join(f"{path or '(document)'}: {message}" for path, message in self.errors)
        )


@dataclass(frozen=True)
class StoreSpec:
    name: str
    address: str
    latitude: float | None
    longitude: float | None
    relevant_text: str | None


@dataclass(frozen=True)
class ProgramDocument:
    slug: str
    name: str
    organization_name: str
    description: str
    card_prefix: str
    points_label: str
    background_color: str
    foreground_color: str
    label_color: str
    images: dict[str, bytes | None]
    terms: str
    support_email: str | None
    support_phone: str | None
    website: str | None
    stores: tuple[StoreSpec, ...]
    rules: ProgramRules
    field_labels: dict[str, str] = field(default_factory=dict)


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, Text]] = []

    def add(self, path: str, message: Text | str, **values: object) -> None:
        """Record ``message``: marked with N_ (its ``%(name)s`` filled from ``values``), or a
        Text already."""
        self.items.append((path, message if isinstance(message, Text) else Text(message, values)))


def _text(
    errors: _Errors, data: dict[str, Any], key: str, path: str, *, limit: int, required: bool
) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            errors.add(path, N_("is required"))
        return None
    if not isinstance(value, str):
        errors.add(path, N_("must be a string"))
        return None
    value = value.strip()
    if required and not value:
        errors.add(path, N_("must not be empty"))
    if len(value) > limit:
        errors.add(path, N_("must be at most %(most)s characters"), most=limit)
    return value


def _unknown(errors: _Errors, data: dict[str, Any], allowed: set[str], prefix: str) -> None:
    for key in sorted(set(data) - allowed):
        errors.add(f"{prefix}{key}", N_("is not a known field"))


def _coordinate(errors: _Errors, value: Any, path: str, bound: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.add(path, N_("must be a number"))
        return None
    if not -bound <= value <= bound:
        errors.add(path, N_("must be between -%(bound)s and %(bound)s"), bound=f"{bound:g}")
        return None
    return float(value)


def parse_program_document(data: Any) -> ProgramDocument:
    """Validate a whole document; raise ProgramDocumentError listing every problem."""
    errors = _Errors()
    if not isinstance(data, dict):
        raise ProgramDocumentError([("", Text(N_("must be a JSON object")))])
    _unknown(errors, data, TOP_LEVEL, "")
    if data.get("format", FORMAT) != FORMAT:
        errors.add("format", N_("must be %(format)s"), format=repr(FORMAT))
    slug = _text(errors, data, "slug", "slug", limit=63, required=True)
    if slug and not SLUG.fullmatch(slug):
        errors.add("slug", N_("must be 2-63 lower-case letters, digits and dashes"))
    name = _text(errors, data, "name", "name", limit=120, required=True)
    organization = _text(
        errors, data, "organization_name", "organization_name", limit=120, required=True
    )
    description = _text(errors, data, "description", "description", limit=200, required=True)
    prefix = _text(errors, data, "card_prefix", "card_prefix", limit=6, required=True)
    if prefix and not PREFIX.fullmatch(prefix):
        errors.add("card_prefix", N_("must be 2 to 6 digits"))
    points_label = _text(errors, data, "points_label", "points_label", limit=40, required=False)
    terms = _text(errors, data, "terms", "terms", limit=4000, required=False)

    raw_labels = data.get("labels") or {}
    field_labels: dict[str, str] = {}
    if not isinstance(raw_labels, dict):
        errors.add("labels", N_("must be an object"))
        raw_labels = {}
    _unknown(errors, raw_labels, set(LABEL_KEYS), "labels.")
    for key in LABEL_KEYS:
        label = _text(errors, raw_labels, key, f"labels.{key}", limit=40, required=False)
        if label:
            field_labels[key] = label

    colors = data.get("colors") or {}
    chosen: dict[str, str] = {}
    if not isinstance(colors, dict):
        errors.add("colors", N_("must be an object"))
        colors = {}
    _unknown(errors, colors, {"background", "foreground", "label"}, "colors.")
    for key, default in (
        ("background", "#3b2a20"),
        ("foreground", "#ffffff"),
        ("label", "#e8d5b5"),
    ):
        try:
            chosen[key] = validate_colour(colors.get(key, default))
        except (ValueError, TypeError, AttributeError):
            errors.add(f"colors.{key}", N_("must be a colour like #3b2a20"))

    images: dict[str, bytes | None] = {}
    raw_images = data.get("images") or {}
    if not isinstance(raw_images, dict):
        errors.add("images", N_("must be an object"))
        raw_images = {}
    _unknown(errors, raw_images, set(IMAGE_NAMES), "images.")
    for key in IMAGE_NAMES:
        value = raw_images.get(key)
        if value is None:
            images[key] = None
            continue
        if not isinstance(value, str):
            errors.add(f"images.{key}", N_("must be base64-encoded PNG or JPEG, or null"))
            continue
        try:
            images[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            errors.add(f"images.{key}", N_("is not valid base64"))

    support = data.get("support") or {}
    if not isinstance(support, dict):
        errors.add("support", N_("must be an object"))
        support = {}
    _unknown(errors, support, {"email", "phone", "website"}, "support.")
    email = _text(errors, support, "email", "support.email", limit=254, required=False)
    phone = _text(errors, support, "phone", "support.phone", limit=32, required=False)
    website = _text(errors, support, "website", "support.website", limit=200, required=False)
    if website and not website.startswith(("https://", "http://")):
        errors.add("support.website", N_("must start with https://"))

    stores: list[StoreSpec] = []
    raw_stores = data.get("stores") or []
    if not isinstance(raw_stores, list):
        errors.add("stores", N_("must be a list"))
        raw_stores = []
    if len(raw_stores) > MAX_STORES:
        errors.add("stores", N_("at most %(most)s stores"), most=MAX_STORES)
    seen: set[str] = set()
    for index, raw in enumerate(raw_stores):
        path = f"stores[{index}]"
        if not isinstance(raw, dict):
            errors.add(path, N_("must be an object"))
            continue
        _unknown(
            errors, raw, {"name", "address", "latitude", "longitude", "relevant_text"}, f"{path}."
        )
        store_name = _text(errors, raw, "name", f"{path}.name", limit=120, required=True)
        if store_name:
            if store_name in seen:
                errors.add(f"{path}.name", N_("%(name)s appears twice"), name=repr(store_name))
            seen.add(store_name)
        latitude = _coordinate(errors, raw.get("latitude"), f"{path}.latitude", 90)
        longitude = _coordinate(errors, raw.get("longitude"), f"{path}.longitude", 180)
        if (raw.get("latitude") is None) != (raw.get("longitude") is None):
            errors.add(path, N_("give both latitude and longitude, or neither"))
        stores.append(
            StoreSpec(
                name=store_name or "",
                address=_text(errors, raw, "address", f"{path}.address", limit=240, required=False)
                or "",
                latitude=latitude,
                longitude=longitude,
                relevant_text=_text(
                    errors, raw, "relevant_text", f"{path}.relevant_text", limit=120, required=False
                ),
            )
        )

    rules: ProgramRules | None = None
    try:
        rules = parse_rules(data.get("rules") or {})
    except RulesError as exc:
        for path, text in exc.problems:
            errors.add(f"rules.{path}" if path else "rules", text)

    if not errors.items and any(images.values()):
        try:
            render_pass_images(
                title=name or "",
                background=chosen["background"],
                foreground=chosen["foreground"],
                logo=images.get("logo"),
                icon=images.get("icon"),
                strip=images.get("strip"),
            )
        except ImageError as exc:
            errors.add("images", exc.text)

    if errors.items or rules is None:
        raise ProgramDocumentError(errors.items)
    assert slug and name and organization and description and prefix
    return ProgramDocument(
        slug=slug,
        name=name,
        organization_name=organization,
        description=description,
        card_prefix=prefix,
        points_label=points_label or "Points",
        background_color=chosen["background"],
        foreground_color=chosen["foreground"],
        label_color=chosen["label"],
        images=images,
        terms=terms or "",
        field_labels=field_labels,
        support_email=email or None,
        support_phone=phone or None,
        website=website or None,
        stores=tuple(stores),
        rules=rules,
    )


def export_program(program: Program) -> dict[str, Any]:
    """The program as a document that :func:`parse_program_document` accepts unchanged."""

    def encoded(image: bytes | None) -> str | None:
        return base64.b64encode(image).decode("ascii") if image else None

    return {
        "format": FORMAT,
        "slug": program.slug,
        "name": program.name,
        "organization_name": program.organization_name,
        "description": program.description,
        "card_prefix": program.card_prefix,
        "points_label": program.points_label,
        "colors": {
            "background": program.background_color,
            "foreground": program.foreground_color,
            "label": program.label_color,
        },
        "images": {
            "logo": encoded(program.logo_image),
            "icon": encoded(program.icon_image),
            "strip": encoded(program.strip_image),
        },
        "terms": program.terms,
        "labels": {key: (program.field_labels or {}).get(key) for key in LABEL_KEYS},
        "support": {
            "email": program.support_email,
            "phone": program.support_phone,
            "website": program.website,
        },
        "stores": [
            {
                "name": store.name,
                "address": store.address,
                "latitude": store.latitude,
                "longitude": store.longitude,
                "relevant_text": store.relevant_text,
            }
            for store in program.stores
        ],
        "rules": rules_to_dict(parse_rules(program.rules or {})),
    }


def apply_program_document(session: Session, document: ProgramDocument) -> tuple[Program, bool]:
    """Create the program, or replace an existing one with the same slug. Returns (program,
    created). Stores are matched by name: kept ones keep their id (and their API keys), missing
    ones are removed with their keys. The card prefix of an existing program cannot change, since
    issued card numbers carry it."""
    program = session.scalar(select(Program).where(Program.slug == document.slug))
    created = program is None
    clash = session.scalar(
        select(Program).where(
            Program.card_prefix == document.card_prefix, Program.slug != document.slug
        )
    )
    if clash is not None:
        used = Text(N_("is already used by program %(program)s"), {"program": repr(clash.slug)})
        raise ProgramDocumentError([("card_prefix", used)])
    if program is None:
        program = Program(slug=document.slug, card_prefix=document.card_prefix)
        session.add(program)
    elif program.card_prefix != document.card_prefix:
        fixed = N_("cannot change from %(prefix)s: cards carry it")
        raise ProgramDocumentError([("card_prefix", Text(fixed, {"prefix": program.card_prefix}))])
    program.name = document.name
    program.organization_name = document.organization_name
    program.description = document.description
    program.points_label = document.points_label
    program.background_color = document.background_color
    program.foreground_color = document.foreground_color
    program.label_color = document.label_color
    program.logo_image = document.images.get("logo")
    program.icon_image = document.images.get("icon")
    program.strip_image = document.images.get("strip")
    program.terms = document.terms
    program.field_labels = dict(document.field_labels)
    program.support_email = document.support_email
    program.support_phone = document.support_phone
    program.website = document.website
    program.rules = rules_to_dict(document.rules)
    by_name = {store.name: store for store in program.stores}
    kept: list[Store] = []
    for spec in document.stores:
        store = by_name.pop(spec.name, None) or Store(name=spec.name)
        store.address = spec.address
        store.latitude = spec.latitude
        store.longitude = spec.longitude
        store.relevant_text = spec.relevant_text
        kept.append(store)
    program.stores = kept
    session.flush()
    sync_reward_stock(session, program)
    return program, created
