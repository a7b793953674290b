"""Every mapped model, imported in one place so the metadata is complete for migrations."""

from passes.accounts.models import SignInFailure, StaffUser
from passes.db import Base
from passes.jobs.runs import JobRun
from passes.loyalty import pass_versions
from passes.loyalty.models import (
    ActionCount,
    ApiKey,
    Card,
    IdempotencyRecord,
    LedgerEntry,
    Member,
    PassChangeCounter,
    PointLot,
    Program,
    Purchase,
    RewardStock,
    Store,
    WalletUpdate,
)
from passes.marketing.models import Campaign, CardOffer
from passes.push.models import (
    AppleDevice,
    AppleRegistration,
    GoogleClass,
    GoogleNotification,
    GoogleObject,
    RateBucket,
)
from passes.webhooks.models import WebhookCardState, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ActionCount",
    "ApiKey",
    "AppleDevice",
    "AppleRegistration",
    "Base",
    "Campaign",
    "Card",
    "CardOffer",
    "GoogleClass",
    "GoogleNotification",
    "GoogleObject",
    "IdempotencyRecord",
    "JobRun",
    "LedgerEntry",
    "Member",
    "PassChangeCounter",
    "PointLot",
    "Program",
    "Purchase",
    "RateBucket",
    "RewardStock",
    "SignInFailure",
    "StaffUser",
    "Store",
    "WalletUpdate",
    "WebhookCardState",
    "WebhookDelivery",
    "WebhookEndpoint",
    "pass_versions",
]
