"""The page scripts' messages, in the catalogues like the pages' text: a page puts their
translations in a JSON block its script reads (``t()`` in ``static/js/scanner.js``,
``designer.js`` and ``analytics.js``; ``{name}`` marks a value the script puts in). Keep these
lists and the scripts in step: the suite checks every message a script passes to ``t()`` is
listed."""

from __future__ import annotations

from flask_babel import gettext

from passes.text import N_

SCANNER_TEXT: tuple[str, ...] = (
    N_("The server answered {status}."),
    N_("No answer from the server (network problem or timeout)."),
    N_("The answer from the server was cut off."),
    N_(
        "It may or may not have been recorded. Press the same button again to retry: "
        "a retry of the same entry is never recorded twice."
    ),
    N_("Sign in again"),
    N_("This page has expired. Reload it, then try again."),
    N_("Reload the page"),
    N_("Something went wrong in this page: {error}"),
    N_("none"),
    N_("Give {reward}"),
    N_("(out of stock)"),
    N_("Type the card number, or scan the card."),
    N_("Type the {what} as a number, e.g. {example}."),
    N_("amount"),
    N_("receipt amount"),
    N_("Already recorded: {amount}"),
    N_("Recorded: {amount}"),
    N_("Discount {rate}: \u2212{amount}"),
    N_("No discount"),
    N_("Customer pays {amount}"),
    N_("Earned +{points}"),
    N_("Cashback +{points}"),
    N_("New balance {points}"),
    N_("Tier changed: now {tier}"),
    N_("no tier"),
    N_("Already paid: {points}"),
    N_("Paid with {points}"),
    N_("Customer pays {amount} of {total}"),
    N_("Already given: {reward}"),
    N_("Give the customer: {reward}"),
    N_("Spent {points}; new balance {balance}"),
    N_(
        "Camera access was refused. Allow the camera for this site in the browser settings, "
        "or type the card number below."
    ),
    N_("No camera was found on this device. Type the card number below."),
    N_("The camera is busy in another app. Close it and try again, or type the card number below."),
    N_("The camera could not start ({error}). Type the card number below."),
    N_("This browser cannot use the camera. Type the card number below."),
    N_("The camera works only over HTTPS. Type the card number below."),
    N_("Starting the camera\u2026"),
    N_("Point the camera at the QR code on the customer's card."),
    N_("Card scanned."),
    N_("Camera stopped."),
    N_("Camera stopped while the page was hidden."),
)


DESIGNER_TEXT: tuple[str, ...] = (
    N_("Updating the preview\u2026"),
    N_("The preview shows the last valid design."),
    N_("Preview of a sample member's card (not saved yet)."),
    N_("The preview could not be updated: {error}"),
    N_("design"),  # a problem of the whole design rather than of one field
)


# The analytics charts' legends and axis labels (the tables share these words).
ANALYTICS_TEXT: tuple[str, ...] = (
    N_("Members in all"),
    N_("New members"),
    N_("Purchases"),
    N_("Cards"),
    N_("Offered to Google"),
    N_("Reach"),
    N_("Delivered"),
)


def script_text(messages: tuple[str, ...]) -> dict[str, str]:
    """English message -> the visitor's language, only where they differ."""
    translated = {message: gettext(message) for message in messages}
    return {english: text for english, text in translated.items() if text != english}
