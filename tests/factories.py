"""Small builders for test data; real models through the real session."""

from __future__ import annotations

import itertools
from datetime import datetime

from sqlalchemy.orm import Session

from passes.loyalty.barcode import derive_barcode_key
from passes.loyalty.enrollment import Applicant, enroll
from passes.loyalty.models import Card, Program, Store

BARCODE_KEY = derive_barcode_key("test-secret-key-not-for-production")
_counter = itertools.count(1)
TIERS = {
    "metric": "spend",
    "window_days": 365,
    "levels": [
        {"key": "lover", "name": "Любитель", "threshold": 0, "multiplier": 10000, "discount": 0},
        {
            "key": "gourmet",
            "name": "Гурман",
            "threshold": 1000000,
            "multiplier": 12500,
            "discount": 300,
        },
    ],
}


def make_program(
    session: Session, *, stores: int = 2, tiers: bool = True, **fields: object
) -> Program:
    n = next(_counter)
    values: dict[str, object] = {
        "slug": f"shop-{n}",
        "name": f"Shop {n}",
        "organization_name": f"Shop {n} Ltd",
        "description": f"Shop {n} loyalty card",
        "card_prefix": str(100 + n),
        "terms": "Points never expire in tests.",
        "support_email": "help@shop.example",
    }
    values.update(fields)
    program = Program(**values)
    program.stores = [
        Store(name=f"Store {i}", latitude=55.75 + i / 100, longitude=37.6 + i / 100)
        for i in range(stores)
    ]
    if tiers and "rules" not in fields:
        program.rules = {"tiers": TIERS}
    session.add(program)
    session.flush()
    return program


def make_card(
    session: Session, program: Program, *, name: str = "Анна Смирнова", email: str | None = None
) -> Card:
    email = email or f"member{next(_counter)}@example.com"
    return enroll(
        session, program, Applicant(name, email, None, None), barcode_key=BARCODE_KEY
    ).card


def buy(session: Session, card: Card, amount: int, now: datetime | None = None) -> None:
    """A till purchase in roubles (minor units) at ``now``, through the ledger."""
    from passes.loyalty.ledger import record_purchase

    record_purchase(
        session,
        card,
        amount=amount,
        currency="RUB",
        lines=None,
        store_id=None,
        receipt=None,
        source="test",
        now=now,
    )
    session.flush()
