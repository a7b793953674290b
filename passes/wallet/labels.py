"""The wallets' fixed labels in the languages we ship, for both wallets: pass.json and the
Google bodies carry the English text, and each wallet shows the member's language from these
(Apple through ``<lang>.lproj/pass.strings``, Google through ``translatedValues``).

Labels a shop chooses (the points label, offer titles, terms) are shown as the shop wrote them.
"""

from __future__ import annotations

LANGUAGES = ("en", "ru")

# English (as written in the passes) -> Russian.
RUSSIAN: dict[str, str] = {
    "Tier": "Уровень",
    "Member": "Участник",
    "Card number": "Номер карты",
    "Terms and conditions": "Условия программы",
    "Terms": "Условия",
    "Contact": "Связь",
    "Member since": "Участник с",
    "Support": "Поддержка",
    "Your tier is now %@": "Ваш уровень теперь %@",
    "Points expiring": "Баллы сгорают",
}


def translations(language: str) -> dict[str, str]:
    """English label -> ``language``'s (English maps to itself)."""
    if language == "en":
        return {label: label for label in RUSSIAN}
    if language == "ru":
        return dict(RUSSIAN)
    raise ValueError(f"no labels in {language!r}")
