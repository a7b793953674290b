"""Joining a program: validating what a person typed and issuing their card exactly once."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passes.db import utcnow
from passes.loyalty.barcode import barcode_payload
from passes.loyalty.card_numbers import generate_card_number
from passes.loyalty.ledger import welcome
from passes.loyalty.models import Card, Member, Program
from passes.text import N_, Text

NAME_MAX = 120  # the message below says so too


PHONE_PATTERN = re.compile(r"^\+?[0-9]{7,15}$")


@dataclass(frozen=True)
class Applicant:
    """A validated enrollment request."""

    name: str
    email: str
    phone: str | None
    birthday: date | None
    language: str | None = None  # of the page they joined on


@dataclass
class ApplicantErrors(Exception):
    """Field name → message, for forms to show next to each field."""

    errors: dict[str, str | Text] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(f"{name}: {message}" for name, message in self.errors.items())


def email_key(email: str) -> str:
    """The uniqueness key of an address: case does not distinguish people."""
    return email.casefold()


_EMAIL_INVALID = N_("This e-mail address is not valid: %(reason)s")


def _email_reason(exc: EmailNotValidError) -> str | Text:
    """Why an address is refused, in words we translate where we can (email-validator says it
    in English only): the usual mistakes by name, anything rarer as the library says it."""
    reason = str(exc)
    if reason.startswith("An email address must have an @-sign"):
        return Text(N_("it has no @, as in name@example.com."))
    if "something before the @-sign" in reason:
        return Text(N_("there is nothing before the @."))
    if "something after the @-sign" in reason:
        return Text(N_("there is nothing after the @."))
    if "before the @-sign" in reason or "two periods in a row" in reason:
        return Text(N_("the part before the @ has characters an address cannot have."))
    if "after the @-sign" in reason:
        return Text(N_("the part after the @ is not a domain name such as example.com."))
    return reason


def validate_applicant(
    *, name: str, email: str, phone: str = "", birthday: str = "", consent: bool, today: date
) -> Applicant:
    """Check and normalise raw form input; raise ApplicantErrors naming every bad field at once."""
    errors: dict[str, str | Text] = {}
    name = " ".join(name.split())
    if not name:
        errors["name"] = N_("Please enter your name.")
    elif len(name) > NAME_MAX:
        errors["name"] = N_("Please use at most 120 characters.")

    normalized_email = ""
    email = email.strip()
    if not email:
        errors["email"] = N_("Please enter your e-mail address.")
    else:
        try:
            normalized_email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            errors["email"] = Text(_EMAIL_INVALID, {"reason": _email_reason(exc)})

    normalized_phone: str | None = None
    phone_digits = re.sub(r"[\s()\-.]", "", phone)
    if phone_digits:
        if PHONE_PATTERN.fullmatch(phone_digits):
            normalized_phone = phone_digits
        else:
            errors["phone"] = N_(
                "Please enter a phone number of 7 to 15 digits, e.g. +79161234567."
            )

    parsed_birthday: date | None = None
    if birthday.strip():
        try:
            parsed_birthday = date.fromisoformat(birthday.strip())
        except ValueError:
            errors["birthday"] = N_("Please enter your birthday as a date, e.g. 1990-04-21.")
        else:
            if parsed_birthday > today:
                errors["birthday"] = N_("Your birthday cannot be in the future.")
            elif parsed_birthday.year < today.year - 120:
                errors["birthday"] = N_("Please check the year of your birthday.")

    if not consent:
        errors["consent"] = N_("Please agree to the program terms to get a card.")

    if errors:
        raise ApplicantErrors(errors)
    return Applicant(name, normalized_email, normalized_phone, parsed_birthday)


@dataclass(frozen=True)
class Enrollment:
    """The card a person holds after asking to join, and whether it was issued just now."""

    card: Card
    created: bool


def find_card_by_email(session: Session, program: Program, email: str) -> Card | None:
    """The card of the member with this address in the program, if any."""
    return session.scalar(
        select(Card)
        .join(Member, Card.member_id == Member.id)
        .where(Member.program_id == program.id, Member.email_key == email_key(email))
    )


def enroll(
    session: Session,
    program: Program,
    applicant: Applicant,
    *,
    barcode_key: bytes,
    now: datetime | None = None,
) -> Enrollment:
    """Issue a card, or return the existing one for this e-mail without creating a duplicate.

    The unique (program, e-mail) constraint is the arbiter when two requests race: the loser rolls
    back to its savepoint and returns the winner's card. Commits are the caller's.
    """
    existing = find_card_by_email(session, program, applicant.email)
    if existing is not None:
        return Enrollment(existing, created=False)
    now = now or utcnow()
    for _attempt in range(8):
        try:
            with session.begin_nested():
                card = _issue_card(session, program, applicant, barcode_key=barcode_key, now=now)
                welcome(session, card, now=now)
            return Enrollment(card, created=True)
        except IntegrityError:
            existing = find_card_by_email(session, program, applicant.email)
            if existing is not None:
                return Enrollment(existing, created=False)
            # Otherwise a random card number or token collided: draw again.
    raise RuntimeError("could not allocate a unique card number after 8 attempts")


def _issue_card(
    session: Session, program: Program, applicant: Applicant, *, barcode_key: bytes, now: datetime
) -> Card:
    member = Member(
        program_id=program.id,
        name=applicant.name,
        email=applicant.email,
        email_key=email_key(applicant.email),
        phone=applicant.phone,
        birthday=applicant.birthday,
        language=applicant.language,
        consent_at=now,
        created_at=now,
    )
    number = generate_card_number(program.card_prefix)
    entry_tier = program.entry_tier()
    card = Card(
        program_id=program.id,
        member=member,
        number=number,
        serial_number=secrets.token_urlsafe(18),
        authentication_token=secrets.token_urlsafe(32),
        page_token=secrets.token_urlsafe(24),
        barcode_payload=barcode_payload(barcode_key, number),
        points_balance=0,
        lifetime_spend=0,
        tier_key=entry_tier,
        content_version=1,
        pass_updated_at=now,
        created_at=now,
    )
    session.add_all([member, card])
    session.flush()
    return card
