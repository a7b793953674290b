"""loyalpass: loyalty cards in Apple Wallet and Google Wallet."""

from passes.factory import ConfigurationError, create_app

__all__ = ["ConfigurationError", "create_app"]
