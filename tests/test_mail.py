"""The mailer against a real SMTP server on loopback, and its development fallback."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from passes.mail import Mailer


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def test_message_is_delivered_over_smtp(smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    mailer = Mailer("127.0.0.1", port, None, None, "Zerno <no-reply@zerno.example>", use_tls=False)
    mailer.send("anna@example.com", "Your Зерно card", "Link: https://x/c/abc")
    [envelope] = inbox.envelopes
    assert envelope.rcpt_tos == ["anna@example.com"]
    message = message_from_bytes(envelope.content, policy=policy.default)  # type: ignore[arg-type]
    assert message["From"] == "Zerno <no-reply@zerno.example>"
    assert message["Subject"] == "Your Зерно card"
    assert "https://x/c/abc" in message.get_content()  # type: ignore[attr-defined]


def test_unreachable_server_raises() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    mailer = Mailer("127.0.0.1", closed, None, None, "x@example.com", use_tls=False, timeout=2)
    with pytest.raises(OSError):
        mailer.send("anna@example.com", "s", "b")


def test_without_server_the_message_goes_to_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="passes.mail")
    Mailer(None, 587, None, None, "x@example.com").send("anna@example.com", "Subject", "Body text")
    assert "anna@example.com" in caplog.text and "Body text" in caplog.text
