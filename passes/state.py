"""The per-process objects the web layer and the CLI share, built once by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from passes.mail import Mailer
from passes.wallet.apple.issuer import ApplePassIssuer
from passes.wallet.google.issuer import GoogleIssuer


@dataclass
class AppState:
    """Held in ``app.extensions["passes"]``."""

    engine: Engine
    sessionmaker: sessionmaker[Session]
    barcode_key: bytes
    mailer: Mailer
    # None when signing is switched off, or during maintenance commands without certificates.
    apple: ApplePassIssuer | None
    development_certificates: bool
    # None unless GOOGLE_ISSUER_ID and GOOGLE_SERVICE_ACCOUNT_FILE are set.
    google: GoogleIssuer | None = None
