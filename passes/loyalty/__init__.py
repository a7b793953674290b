"""Loyalty domain: programs, members, cards, and (later) rules and the ledger. No Flask here."""

# Registers the hook that versions passes whenever their content changes.
from passes.loyalty import pass_versions as _pass_versions  # noqa: F401
