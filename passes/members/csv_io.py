"""Members in and out as CSV: import a shop's existing customers, export the program's members.

Import checks each row as the join page checks a form (the same validation), enrols new
members with their welcome points, credits an opening balance as an audited adjustment, and
skips e-mails that already have a card. It never stops at a bad row: the report names each
rejected line and why. Rows are committed in batches, so a large file does not hold one
transaction open, and an interrupted import can simply be run again (existing e-mails are
skipped).

Export streams the program's cards in batches; cells that a spreadsheet would read as a formula
are defused with a leading apostrophe (OWASP's advice on CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager

from passes.db import utcnow
from passes.loyalty.enrollment import ApplicantErrors, enroll, validate_applicant
from passes.loyalty.ledger import MAX_POINTS, adjust
from passes.loyalty.models import Card, Program
from passes.push.models import AppleRegistration, GoogleObject
from passes.text import N_, Text

REQUIRED = ("name", "email")
OPTIONAL = ("phone", "birthday", "points")
EXPORT_COLUMNS = (
    "number",
    "name",
    "email",
    "phone",
    "birthday",
    "tier",
    "points",
    "lifetime_spend_minor_units",
    "joined_at",
    "apple_devices",
    "google_wallet",
)
COMMIT_EVERY = 500
OPENING_BALANCE_REASON = "opening balance from import"


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (no header, missing columns): ``text`` says why
    (``str()``: in English)."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text


@dataclass(frozen=True)
class Rejection:
    """A row left out: its line, and what is wrong with it column by column."""

    line: int
    problems: tuple[tuple[str, Text], ...]  # (column, what is wrong)

    @property
    def why(self) -> str:
        """The problems in English, in one line."""
        return "; ".join(f"{column}: {text}" for column, text in self.problems)


@dataclass
class ImportReport:
    created: int = 0
    existing: int = 0  # e-mail already had a card: left as it was
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def rejected(self) -> list[tuple[int, str]]:
        """(line, why in English) of each row left out."""
        return [(rejection.line, rejection.why) for rejection in self.rejections]

    @property
    def rows(self) -> int:
        return self.created + self.existing + len(self.rejections)


def read_rows(text: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row by lower-cased column) for each data row; comma or semicolon separated
    (spreadsheets in many locales write semicolons), with or without a byte order mark."""
    lines = iter(text)
    header_line = next(lines, None)
    if header_line is None or not header_line.strip():
        raise ImportFileError(
            Text(N_("the file is empty: it needs a header row with name and email"))
        )
    header_line = header_line.lstrip("\ufeff")
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    header = [name.strip().lower() for name in next(csv.reader([header_line], delimiter=delimiter))]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        lacking = (
            N_("the header row lacks the columns %(missing)s (found: %(found)s)")
            if len(missing) > 1
            else N_("the header row lacks the column %(missing)s (found: %(found)s)")
        )
        found = ", ".join(header) or Text(N_("nothing"))
        raise ImportFileError(Text(lacking, {"missing": ", ".join(missing), "found": found}))
    reader = csv.reader(lines, delimiter=delimiter)
    for values in reader:
        line = reader.line_num + 1  # the header was line 1
        if not any(value.strip() for value in values):
            continue
        yield line, {name: value for name, value in zip(header, values, strict=False)}


def import_members(
    session: Session,
    program: Program,
    text: Iterable[str],
    *,
    barcode_key: bytes,
    actor: str,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import rows from CSV text (lines); commits every COMMIT_EVERY rows and at the end."""
    report = ImportReport()
    today = (now or utcnow()).date()
    pending = 0
    for line, row in read_rows(text):
        _import_row(session, program, row, line, report, barcode_key, actor, now, today)
        pending += 1
        if progress is not None:
            progress(1)
        if pending >= COMMIT_EVERY:
            session.commit()
            pending = 0
    session.commit()
    return report


def _import_row(
    session: Session,
    program: Program,
    row: dict[str, str],
    line: int,
    report: ImportReport,
    barcode_key: bytes,
    actor: str,
    now: datetime | None,
    today: date,
) -> None:
    points_text = row.get("points", "").strip()
    problems: list[tuple[str, Text]] = []
    points = 0
    if points_text:
        if not points_text.isdigit() or int(points_text) > MAX_POINTS:
            not_points = N_("%(value)s is not a whole number of points")
            problems.append(("points", Text(not_points, {"value": repr(points_text)})))
        else:
            points = int(points_text)
    try:
        applicant = validate_applicant(
            name=row.get("name", ""),
            email=row.get("email", ""),
            phone=row.get("phone", ""),
            birthday=row.get("birthday", ""),
            consent=True,  # the shop imports customers who agreed to its program
            today=today,
        )
    except ApplicantErrors as errors:
        problems[:0] = [
            (name, message if isinstance(message, Text) else Text(message))
            for name, message in errors.errors.items()
        ]
        applicant = None
    if applicant is None or problems:
        report.rejections.append(Rejection(line, tuple(problems)))
        return
    with session.begin_nested():
        enrollment = enroll(session, program, applicant, barcode_key=barcode_key, now=now)
        if not enrollment.created:
            report.existing += 1
            return
        if points:
            adjust(
                session,
                enrollment.card,
                points=points,
                reason=OPENING_BALANCE_REASON,
                actor=actor,
                now=now,
            )
    report.created += 1


def export_rows(session: Session, program: Program) -> Iterator[list[str]]:
    """The header, then one row per card of the program, oldest first, read in batches."""
    yield list(EXPORT_COLUMNS)
    devices = (
        select(func.count())
        .where(AppleRegistration.card_id == Card.id)
        .correlate(Card)
        .scalar_subquery()
    )
    statement = (
        select(Card, devices, GoogleObject.card_id, GoogleObject.in_wallet)
        .outerjoin(GoogleObject, GoogleObject.card_id == Card.id)
        .join(Card.member)
        .options(contains_eager(Card.member))
        .where(Card.program_id == program.id)
        .order_by(Card.id)
        .execution_options(yield_per=1000)
    )
    for card, device_count, google_object, in_google in session.execute(statement):
        member = card.member
        yield [
            defuse(value)
            for value in (
                card.number,
                member.name,
                member.email,
                member.phone or "",
                member.birthday.isoformat() if member.birthday else "",
                card.tier_key or "",
                str(card.points_balance),
                str(card.lifetime_spend),
                card.created_at.isoformat(),
                str(device_count),
                _google_wallet(google_object is not None, in_google),
            )
        ]


def _google_wallet(offered: bool, in_wallet: bool | None) -> str:
    """saved / deleted (as Google's callbacks said), offered (no word from Google), or no."""
    if not offered:
        return "no"
    return {True: "saved", False: "deleted", None: "offered"}[in_wallet]


def export_csv(session: Session, program: Program) -> Iterator[str]:
    """The export as CSV text, a chunk per 500 rows (for a streamed download)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for number, row in enumerate(export_rows(session, program)):
        writer.writerow(row)
        if number % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: str) -> str:
    """Defuse a cell a spreadsheet would evaluate; a plain signed number (a phone) is left."""
    if value.startswith(_FORMULA_START) and not value.lstrip("+-").isdigit():
        return "'" + value
    return value
