"""Keeping wallet cards current: the outbox of card changes, delivered to devices."""
