"""Every mapped model, imported in one place so the metadata is complete for migrations."""

from passes.db import Base
from passes.loyalty import pass_versions
from passes.loyalty.models import (
    ActionCount,
    ApiKey,
    Card,
    IdempotencyRecord,
    LedgerEntry,
    Member,
    PointLot,
    Program,
    Purchase,
    RewardStock,
    Store,
    WalletUpdate,
)

__all__ = [
    "ActionCount",
    "ApiKey",
    "Base",
    "Card",
    "IdempotencyRecord",
    "LedgerEntry",
    "Member",
    "PointLot",
    "Program",
    "Purchase",
    "RewardStock",
    "Store",
    "WalletUpdate",
    "pass_versions",
]
