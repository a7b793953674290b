"""Words for the values the console shows that are stored as machine-readable English (a
campaign's status, a role, a ledger entry's kind…): the value stays what the database, the CSV
files and the APIs say, the page shows its label in the visitor's language (``label(group,
value)`` in templates; a value without a label is shown as it is)."""

from __future__ import annotations

from flask_babel import gettext

from passes.text import N_

LABELS: dict[str, dict[str, str]] = {
    "campaign_status": {
        "scheduled": N_("scheduled"),
        "sending": N_("sending"),
        "sent": N_("sent"),
        "cancelled": N_("cancelled"),
        "ended": N_("ended"),
    },
    # Staff users' roles and API keys' roles (admin is both).
    "role": {
        "admin": N_("admin"),
        "marketer": N_("marketer"),
        "clerk": N_("clerk"),
        "store": N_("store"),
        "partner": N_("partner"),
    },
    "segment_kind": {
        "all": N_("all"),
        "tier": N_("tier"),
        "joined": N_("joined"),
        "inactive": N_("inactive"),
        "birthday_month": N_("birthday month"),
        "balance": N_("balance"),
        "spend": N_("spend"),
        "wallet": N_("wallet"),
    },
    "wallet": {"apple": N_("Apple Wallet"), "google": N_("Google Wallet"), "none": N_("none")},
    "ledger_kind": {
        "accrual": N_("purchase"),
        "cashback": N_("cashback"),
        "action_bonus": N_("action bonus"),
        "welcome_bonus": N_("welcome bonus"),
        "birthday_gift": N_("birthday gift"),
        "adjustment": N_("adjustment"),
        "redemption": N_("paid with points"),
        "reward": N_("reward"),
        "refund_reversal": N_("refund"),
        "transfer_in": N_("transfer in"),
        "transfer_out": N_("transfer out"),
        "expiry": N_("expiry"),
    },
    "delivery_status": {
        "pending": N_("pending"),
        "delivered": N_("delivered"),
        "failed": N_("failed"),
    },
    "job_outcome": {"running": N_("running"), "ok": N_("ok"), "failed": N_("failed")},
    # The scheduler's jobs by id (passes.jobs describes them in English).
    "job": {
        "deliver-apple-updates": N_("Apple Wallet pushes"),
        "deliver-google-updates": N_("Google Wallet sync"),
        "send-campaigns": N_("due campaigns and expired offers"),
        "send-webhooks": N_("webhooks to the shops' endpoints"),
        "expire-points": N_("points expiry"),
        "warn-expiring-points": N_("expiry warnings on cards"),
        "birthday-gifts": N_("birthday gifts"),
        "forget-callback-nonces": N_("expired Google callback nonces"),
        "evaluate-tiers": N_("nightly tier evaluation"),
        "certificate-expiry": N_("Apple certificate expiry check"),
    },
}


def label(group: str, value: object, default: str | None = None) -> str:
    """``value``'s label in the visitor's language; without one, ``default`` or the value."""
    text = "" if value is None else str(value)
    known = LABELS[group].get(text)
    if known:
        return str(gettext(known))
    return text if default is None else default
