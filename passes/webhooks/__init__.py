"""Webhooks out: the shop's own systems hear of card and campaign events, signed, retried."""
