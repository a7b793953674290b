"""Settings: defaults here, then ``instance/config.py``, then ``PASSES_*`` environment variables.

Every setting is listed in the README. Paths that are relative resolve against the working directory
the app was started from (the project root under ``make run``).
"""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    # Flask session/CSRF signing and the barcode MAC key (derived). When unset, a random key file in
    # the instance folder is used, so a development checkout never runs with a published secret.
    "SECRET_KEY": None,
    # Key of the QR codes' MAC. Unset: derived from SECRET_KEY. Set it (any long random string)
    # before going live, so SECRET_KEY can be rotated without every issued QR code reading as typed.
    "BARCODE_KEY": None,
    # SQLAlchemy URL. None means an SQLite file in the instance folder.
    "DATABASE_URL": None,
    # Public origin of this service: links in e-mails, and the passes' webServiceURL. Passes only
    # update themselves when it is https (Apple's rule); the development default is plain http.
    "PUBLIC_URL": "http://127.0.0.1:5000",
    # Apple Wallet signing material.
    "APPLE_PASS_TYPE_IDENTIFIER": "pass.dev.loyalpass.demo",
    "APPLE_TEAM_IDENTIFIER": "LPDEVTEAM1",
    "APPLE_CERTIFICATE": "certs/pass.pem",
    "APPLE_PRIVATE_KEY": "certs/pass.key",
    "APPLE_PRIVATE_KEY_PASSWORD": None,
    "APPLE_P12": None,
    "APPLE_P12_PASSWORD": None,
    "APPLE_WWDR_CERTIFICATE": "certs/wwdr.pem",
    # Pushing pass updates through APNs (HTTP/2). "certificate" authenticates with the pass
    # certificate above as TLS client certificate; "token" with an APNs auth key (.p8, ES256).
    "APNS_ENDPOINT": "https://api.push.apple.com",
    "APNS_AUTH": "certificate",
    "APNS_KEY_FILE": None,
    "APNS_KEY_ID": None,
    "APNS_TEAM_ID": None,  # defaults to APPLE_TEAM_IDENTIFIER
    # A CA file to trust instead of the system store (a test server); verification stays on.
    "APNS_CA_FILE": None,
    "APNS_CONNECTIONS": 2,
    # How often the scheduler delivers pending wallet updates, and how many cards per batch.
    "PUSH_ENABLED": True,
    "PUSH_INTERVAL_SECONDS": 2.0,
    "PUSH_BATCH_SIZE": 5000,
    # Google Wallet: the issuer id from the Pay & Wallet Console and a service-account key file
    # (JSON). Both unset: no Google Wallet button. ORIGINS: the web origins of the save button,
    # comma-separated (default: PUBLIC_URL).
    "GOOGLE_ISSUER_ID": None,
    "GOOGLE_SERVICE_ACCOUNT_FILE": None,
    "GOOGLE_API_ENDPOINT": "https://walletobjects.googleapis.com",
    "GOOGLE_ORIGINS": None,
    # Google's root keys that sign the save/delete callbacks (POST PUBLIC_URL/google/callbacks,
    # announced in every class when PUBLIC_URL is https).
    "GOOGLE_CALLBACK_KEYS_URL": "https://pay.google.com/gp/m/issuer/keys",
    # Wallet API requests per second for the issuer, shared by every worker process (Google's
    # published default is 20).
    "GOOGLE_RATE_LIMIT": 20.0,
    # Requests in flight per worker process (the rate limit, not these, sets the pace).
    "GOOGLE_SYNC_THREADS": 4,
    # Skip loading signing material (pages work, pass downloads answer 503). For tooling only.
    "APPLE_SIGNING_ENABLED": True,
    # Outgoing e-mail (the card link for people who join twice). No server: logged instead.
    "MAIL_SERVER": None,
    "MAIL_PORT": 587,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_SENDER": "loyalpass <no-reply@localhost>",
    "MAIL_USE_TLS": True,
    # Cookie hardening; SESSION_COOKIE_SECURE follows PUBLIC_URL's scheme unless set.
    "SESSION_COOKIE_SECURE": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": 3600 * 8,
    # Proxies in front of the app that set X-Forwarded-For/-Proto/-Host (the sign-in rate limit
    # needs the client's address, not the proxy's). 0: none, the app is reached directly.
    "PROXY_HOPS": 0,
    # A console sign-in lasts this long (then sign in again), however active.
    "CONSOLE_SESSION_HOURS": 12,
    # Webhooks: endpoints must be public https addresses; true lets them be http and private
    # or loopback addresses (development and tests only).
    "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": False,
    # Largest request body accepted (uploads included).
    "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
}

# Settings that arrive as strings from the environment but are booleans.
BOOLEAN_SETTINGS = (
    "APPLE_SIGNING_ENABLED",
    "PUSH_ENABLED",
    "MAIL_USE_TLS",
    "SESSION_COOKIE_SECURE",
    "TESTING",
    "WEBHOOK_ALLOW_PRIVATE_ADDRESSES",
)


def coerce_booleans(config: dict[str, Any]) -> None:
    """``from_prefixed_env`` parses JSON (``true``); accept ``1``/``yes``/``on`` as well."""
    for key in BOOLEAN_SETTINGS:
        value = config.get(key)
        if isinstance(value, str):
            config[key] = value.strip().lower() in {"1", "true", "yes", "on"}
        elif isinstance(value, int) and not isinstance(value, bool):
            config[key] = bool(value)
