"""Outgoing e-mail: the card link for people who join twice. SMTP when configured, else the log.

Without MAIL_SERVER (development) the message is written to the application log instead, so a
developer can follow the link.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mailer:
    """Sends plain-text e-mail through one SMTP server (STARTTLS unless ``use_tls`` is False)."""

    server: str | None
    port: int
    username: str | None
    password: str | None
    sender: str
    use_tls: bool = True
    timeout: float = 10.0

    def send(self, to: str, subject: str, body: str) -> bool:
        """True when an SMTP server accepted the message, False when it only went to the log.

        Raises ``smtplib.SMTPException`` or ``OSError`` when the server cannot be reached or
        refuses the message.
        """
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        if not self.server:
            log.warning("MAIL_SERVER is not set; mail to %s not sent: %s\n%s", to, subject, body)
            return False
        with smtplib.SMTP(self.server, self.port, timeout=self.timeout) as smtp:
            if self.use_tls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)
        return True
