"""The application factory."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from passes.config import DEFAULTS, coerce_booleans
from passes.db import ThreadConnections, make_engine, make_sessionmaker
from passes.loyalty.barcode import derive_barcode_key
from passes.mail import Mailer
from passes.state import AppState
from passes.wallet.apple.certificates import (
    CertificateError,
    SigningMaterial,
    check_signing_material,
    load_signing_material,
)
from passes.wallet.apple.issuer import ApplePassIssuer
from passes.wallet.apple.pass_json import PassIdentity
from passes.wallet.google.issuer import GoogleIssuer, load_service_account

PROJECT_ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)


class ConfigurationError(Exception):
    """A setting is wrong; the message is one line naming it."""


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings, database, signing material, blueprints, CLI.

    Bad signing material stops start-up with a ConfigurationError (gunicorn, ``flask run``,
    ``flask passes serve``, tests), except for the maintenance commands that must work on a fresh
    checkout before certificates exist (``passes init-db``, ``passes dev-certs``, …).
    """
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("PASSES")
    if test_config:
        app.config.from_mapping(test_config)
    coerce_booleans(app.config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path) / "secret_key")
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'loyalpass.db'}"
    public_url = str(app.config["PUBLIC_URL"]).rstrip("/")
    app.config["PUBLIC_URL"] = public_url
    if app.config["SESSION_COOKIE_SECURE"] is None:
        app.config["SESSION_COOKIE_SECURE"] = public_url.startswith("https://")

    hops = int(app.config["PROXY_HOPS"])
    if hops > 0:  # trust exactly that many proxies' X-Forwarded-* headers
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    engine = make_engine(app.config["DATABASE_URL"])
    apple, apple_error, development = _apple_issuer(app.config, public_url)
    if apple_error and not running_maintenance_command():
        raise ConfigurationError(apple_error)
    if apple_error:
        log.info("Apple passes are disabled: %s", apple_error)
    google, google_error = _google_issuer(app.config, public_url)
    if google_error and not running_maintenance_command():
        raise ConfigurationError(google_error)

    app.extensions["passes"] = AppState(
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        thread_connections=(
            ThreadConnections(engine) if engine.dialect.name == "postgresql" else None
        ),
        barcode_key=derive_barcode_key(app.config["BARCODE_KEY"] or app.config["SECRET_KEY"]),
        mailer=Mailer(
            server=app.config["MAIL_SERVER"],
            port=int(app.config["MAIL_PORT"]),
            username=app.config["MAIL_USERNAME"],
            password=app.config["MAIL_PASSWORD"],
            sender=app.config["MAIL_SENDER"],
            use_tls=app.config["MAIL_USE_TLS"],
        ),
        apple=apple,
        development_certificates=development,
        google=google,
    )

    CSRFProtect(app)
    from passes.cli import register_cli
    from passes.web import register_web
    from passes.web.i18n import register_i18n

    register_i18n(app)
    register_web(app)
    register_cli(app)
    return app


MAINTENANCE_COMMANDS = frozenset({"init-db", "dev-certs", "demo", "new-migration"})


def running_maintenance_command(argv: list[str] | None = None) -> bool:
    """True for ``flask … passes <maintenance command>`` and ``--help``: they need no signing."""
    if os.environ.get("FLASK_RUN_FROM_CLI") != "true":
        return False
    args = (sys.argv if argv is None else argv)[1:]
    if "--help" in args or "-h" in args:
        return True
    if "passes" not in args:
        return False
    following = args[args.index("passes") + 1 :]
    return bool(following) and following[0] in MAINTENANCE_COMMANDS


def _instance_secret(path: Path) -> str:
    """A random SECRET_KEY kept in the instance folder, made on first start (mode 0600)."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def resolve_path(value: str | os.PathLike[str] | None) -> Path | None:
    """A configured path; relative paths are taken from the directory the app was started in."""
    if value in (None, ""):
        return None
    path = Path(value)
    return path if path.is_absolute() else Path.cwd() / path


def load_configured_material(config: Mapping[str, Any]) -> SigningMaterial:
    """Load and check the configured Apple signing material; CertificateError names the setting."""
    wwdr = resolve_path(config["APPLE_WWDR_CERTIFICATE"])
    if wwdr is None:
        raise CertificateError("APPLE_WWDR_CERTIFICATE is not set")
    material = load_signing_material(
        certificate=resolve_path(config["APPLE_CERTIFICATE"]),
        private_key=resolve_path(config["APPLE_PRIVATE_KEY"]),
        private_key_password=config["APPLE_PRIVATE_KEY_PASSWORD"],
        p12=resolve_path(config["APPLE_P12"]),
        p12_password=config["APPLE_P12_PASSWORD"],
        wwdr=wwdr,
    )
    check_signing_material(
        material,
        pass_type_identifier=config["APPLE_PASS_TYPE_IDENTIFIER"],
        team_identifier=config["APPLE_TEAM_IDENTIFIER"],
        now=datetime.now(UTC),
    )
    return material


def _apple_issuer(
    config: Mapping[str, Any], public_url: str
) -> tuple[ApplePassIssuer | None, str | None, bool]:
    if not config["APPLE_SIGNING_ENABLED"]:
        log.warning("APPLE_SIGNING_ENABLED is off: pass downloads answer 503")
        return None, None, False
    try:
        material = load_configured_material(config)
    except CertificateError as exc:
        return None, str(exc), False
    identity = PassIdentity(
        pass_type_identifier=material.pass_type_identifier,
        team_identifier=material.team_identifier,
        web_service_url=f"{public_url}/passkit" if public_url.startswith("https://") else None,
    )
    return ApplePassIssuer(material, identity), None, material.is_development


def _google_issuer(
    config: Mapping[str, Any], public_url: str
) -> tuple[GoogleIssuer | None, str | None]:
    """Google Wallet when both its settings are given; one of them alone is a mistake."""
    issuer_id = config["GOOGLE_ISSUER_ID"]
    key_file = resolve_path(config["GOOGLE_SERVICE_ACCOUNT_FILE"])
    if not issuer_id and key_file is None:
        return None, None
    if not issuer_id or key_file is None:
        return None, "set both GOOGLE_ISSUER_ID and GOOGLE_SERVICE_ACCOUNT_FILE, or neither"
    if not public_url.startswith("https://"):
        log.warning("Google Wallet fetches images from PUBLIC_URL, which is not https")
    origins = tuple(
        origin.strip().rstrip("/")
        for origin in str(config["GOOGLE_ORIGINS"] or "").split(",")
        if origin.strip()
    )
    try:
        return GoogleIssuer.create(
            issuer_id=str(issuer_id).strip(),
            service_account_info=load_service_account(key_file),
            public_url=public_url,
            endpoint=str(config["GOOGLE_API_ENDPOINT"]),
            origins=origins,
            callback_keys_url=str(config["GOOGLE_CALLBACK_KEYS_URL"]),
        ), None
    except ValueError as exc:
        return None, str(exc)
