"""Every mapped model, imported in one place so the metadata is complete for migrations."""

from passes.db import Base
from passes.loyalty import pass_versions
from passes.loyalty.models import Card, Member, Program, Store, Tier

__all__ = ["Base", "Card", "Member", "Program", "Store", "Tier", "pass_versions"]
