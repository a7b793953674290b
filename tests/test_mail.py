"""The mailer against a real SMTP server on loopback, and its development fallback."""

from __future__ import annotations

import logging
from email import message_from_bytes, policy

import pytest

from passes.mail import Mailer
from support import Inbox, free_port


def test_message_is_delivered_over_smtp(smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    mailer = Mailer("127.0.0.1", port, None, None, "Zerno <no-reply@zerno.example>", use_tls=False)
    assert mailer.send("anna@example.com", "Your Зерно card", "Link: https://x/c/abc") is True
    [envelope] = inbox.envelopes
    assert envelope.rcpt_tos == ["anna@example.com"]
    message = message_from_bytes(envelope.content, policy=policy.default)  # type: ignore[arg-type]
    assert message["From"] == "Zerno <no-reply@zerno.example>"
    assert message["Subject"] == "Your Зерно card"
    assert "https://x/c/abc" in message.get_content()  # type: ignore[attr-defined]


def test_unreachable_server_raises() -> None:
    mailer = Mailer("127.0.0.1", free_port(), None, None, "x@example.com", use_tls=False, timeout=2)
    with pytest.raises(OSError):
        mailer.send("anna@example.com", "s", "b")


def test_without_server_the_message_goes_to_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="passes.mail")
    delivered = Mailer(None, 587, None, None, "x@example.com").send("anna@example.com", "S", "Body")
    assert delivered is False
    assert "anna@example.com" in caplog.text and "Body" in caplog.text
