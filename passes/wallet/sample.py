"""A sample card: what a design preview shows before a program has members, and what the pass
benchmark signs. Realistic lengths and Cyrillic text, so previews show real wrapping."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from passes.wallet.view import Branding, CardView, Location, Offer

SAMPLE_BRANDING = Branding(
    program_key="zerno",
    design_version=1,
    organization_name="Кофейня «Зерно»",
    program_name="Зерно",
    description="Карта лояльности кофейни «Зерно»",
    background_color="#3b2a20",
    foreground_color="#ffffff",
    label_color="#e8d5b5",
    logo_image=None,
    icon_image=None,
    strip_image=None,
    points_label="Баллы",
    terms="1 балл за каждые 10 ₽ покупки. Баллами можно оплатить до 30 % чека.",
    support_email="hello@zerno.example",
    support_phone="+7 495 000-00-00",
    website="https://zerno.example",
    locations=(
        Location(55.7596, 37.6480, "Зерно на Покровке: покажите карту на кассе"),
        Location(55.7640, 37.5925, "Зерно у Патриарших: покажите карту на кассе"),
    ),
)


def sample_card_view(branding: Branding = SAMPLE_BRANDING, **changes: object) -> CardView:
    """A plausible member's card for ``branding``; ``changes`` replace any CardView field."""
    view = CardView(
        branding=branding,
        serial_number="sample-serial-0000000001",
        authentication_token="sample-authentication-token-000000000000001",  # noqa: S106 - a preview
        card_number="7701234567890128",
        display_number="7701 2345 6789 0128",
        barcode_payload="7701234567890128.AbCdEfGh",
        member_name="Анна Смирнова",
        points_balance=1234,
        tier_name="Гурман",
        offers=(Offer("coffee", "Каждый 10-й кофе", "Десятый кофе — за наш счёт"),),
        member_since=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        updated_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
    )
    return replace(view, **changes)  # type: ignore[arg-type]
