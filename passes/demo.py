"""The demo program loaded by ``flask passes demo``: a Moscow coffee shop. Safe to run again."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from passes.loyalty.enrollment import Applicant, enroll
from passes.loyalty.ledger import sync_reward_stock
from passes.loyalty.models import Card, Program, Store

DEMO_SLUG = "zerno"

# 1 point per 10 ₽; points pay up to 30 % of a receipt; points live 12 months; tiers by spend
# over the last 12 months; a birthday week doubles points; stocked and unstocked rewards.
DEMO_RULES: dict[str, Any] = {
    "timezone": "Europe/Moscow",
    "currency": "RUB",
    "earning": {
        "points": 1,
        "per_amount": 1000,
        "threshold": 0,
        "birthday": {"multiplier": 20000, "scope": "week"},
        "holidays": [
            {"name": "Новый год", "start": "2026-12-25", "end": "2027-01-08", "multiplier": 15000}
        ],
        "stacking": "best",
        "welcome_bonus": {"points": 50, "on": "join"},
    },
    "actions": [
        {"key": "review", "name": "Отзыв", "points": 50, "limit_per_member": 1},
        {"key": "referral_referrer", "name": "Привёл друга", "points": 100, "limit_per_member": 10},
        {
            "key": "referral_friend",
            "name": "Пришёл по приглашению",
            "points": 100,
            "limit_per_member": 1,
        },
        {"key": "survey", "name": "Опрос", "points": 30, "limit_per_member": 1},
    ],
    "points_as_money": {"point_value": 100, "max_share": 3000},
    "require_scan_for_redemption": False,
    "rewards": [
        {"key": "free-coffee", "name": "Кофе в подарок", "cost": 150, "stock": None},
        {"key": "croissant", "name": "Круассан", "cost": 120, "stock": 50},
    ],
    "tiers": {
        "metric": "spend",
        "window_days": 365,
        "levels": [
            {
                "key": "lover",
                "name": "Любитель",
                "threshold": 0,
                "multiplier": 10000,
                "discount": 0,
            },
            {
                "key": "gourmet",
                "name": "Гурман",
                "threshold": 1000000,
                "multiplier": 12500,
                "discount": 0,
            },
            {
                "key": "coffee-fan",
                "name": "Кофеман",
                "threshold": 3000000,
                "multiplier": 15000,
                "discount": 500,
            },
        ],
    },
    "expiry": {"mode": "lifetime", "days": 365, "warn_days": 14},
    "transfers": {"enabled": True, "min_points": 10, "max_points": 2000, "max_per_day": 3},
}

SAMPLE_MEMBERS = (
    Applicant("Анна Смирнова", "anna.smirnova@example.com", "+79161234567", date(1991, 4, 21)),
    Applicant("Дмитрий Волков", "d.volkov@example.com", None, None),
    Applicant("Emily Carter", "emily.carter@example.com", None, date(1988, 11, 2)),
)


def load_demo(session: Session, *, barcode_key: bytes) -> tuple[Program, list[Card]]:
    """Create the demo program and its sample members if missing; never duplicates anything."""
    program = session.scalar(select(Program).where(Program.slug == DEMO_SLUG))
    if program is None:
        program = Program(
            slug=DEMO_SLUG,
            name="Зерно",
            organization_name="Кофейня «Зерно»",
            description="Карта лояльности кофейни «Зерно»",
            card_prefix="7701",
            points_label="Баллы",
            background_color="#3b2a20",
            foreground_color="#ffffff",
            label_color="#e8d5b5",
            terms=(
                "1 балл за каждые 10 ₽ покупки. Баллами можно оплатить до 30 % чека. "
                "Баллы действуют 12 месяцев. Уровни: Любитель, Гурман (от 10 000 ₽ за год), "
                "Кофеман (от 30 000 ₽ за год)."
            ),
            support_email="hello@zerno.example",
            support_phone="+7 495 000-00-00",
            website="https://zerno.example",
            stores=[
                Store(
                    name="Зерно на Покровке",
                    address="Москва, ул. Покровка, 17",
                    latitude=55.7596,
                    longitude=37.6480,
                    relevant_text="Зерно на Покровке: покажите карту на кассе",
                ),
                Store(
                    name="Зерно у Патриарших",
                    address="Москва, Малая Бронная ул., 24",
                    latitude=55.7640,
                    longitude=37.5925,
                    relevant_text="Зерно у Патриарших: покажите карту на кассе",
                ),
            ],
            rules=DEMO_RULES,
        )
        session.add(program)
        session.flush()
        sync_reward_stock(session, program)
    cards = [
        enroll(session, program, applicant, barcode_key=barcode_key).card
        for applicant in SAMPLE_MEMBERS
    ]
    return program, cards
