"""The per-process objects the web layer and the CLI share, built once by ``create_app``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from passes.db import DirectConnection, ThreadConnections
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
    # PostgreSQL: each server thread's own autocommit connection for the hot paths.
    thread_connections: ThreadConnections | None = None
    # How a request opens its direct connection (the tests join theirs to a rolled-back one).
    connect: Callable[[], DirectConnection] | None = None

    def direct_connection(self) -> DirectConnection:
        """A direct connection for one request (see ``DirectConnection``)."""
        if self.connect is not None:
            return self.connect()
        if self.thread_connections is not None:
            return self.thread_connections.request()
        return DirectConnection.open(self.engine)
