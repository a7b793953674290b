"""Loyalty domain: programs, members, cards, and (later) rules and the ledger. No Flask here."""
