"""The JSON API under /api/v1: the till (store keys), partners, and program administration."""
