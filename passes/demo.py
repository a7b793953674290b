"""The demo program loaded by ``flask passes demo``: a Moscow coffee shop. Safe to run again."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from passes.loyalty.enrollment import Applicant, enroll
from passes.loyalty.models import Card, Program, Store, Tier

DEMO_SLUG = "zerno"

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
            currency="RUB",
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
            tiers=[
                Tier(position=0, name="Любитель"),
                Tier(position=1, name="Гурман"),
                Tier(position=2, name="Кофеман"),
            ],
        )
        session.add(program)
        session.flush()
    cards = [
        enroll(session, program, applicant, barcode_key=barcode_key).card
        for applicant in SAMPLE_MEMBERS
    ]
    return program, cards
