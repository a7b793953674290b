"""CSV import (the CLI's and the console's) and export of members, on both engines."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import BARCODE_KEY, make_card, make_program
from passes.loyalty.models import Card, LedgerEntry, Member, Program
from passes.members.csv_io import (
    COMMIT_EVERY,
    EXPORT_COLUMNS,
    OPENING_BALANCE_REASON,
    ImportFileError,
    ImportReport,
    export_csv,
    export_rows,
    import_members,
)
from passes.push.models import AppleDevice, AppleRegistration

GOOD = (
    "Name;Email;Phone;Birthday;Points\n"
    "Ирина Петрова;irina@example.com;+7 916 123-45-67;1990-04-21;250\n"
    "Олег;OLEG@example.com;;;\n"
)


def cards_of(session: Session, program: Program) -> dict[str, Card]:
    rows = session.scalars(select(Card).join(Member).where(Card.program_id == program.id))
    return {card.member.email_key: card for card in rows}


def run_import(session: Session, program: Program, text: str) -> ImportReport:
    return import_members(
        session, program, io.StringIO(text), barcode_key=BARCODE_KEY, actor="tester"
    )


def test_an_import_enrols_members_with_opening_balances(db_session: Session) -> None:
    program = make_program(db_session)
    report = run_import(db_session, program, GOOD)
    assert (report.created, report.existing, report.rejected) == (2, 0, [])
    cards = cards_of(db_session, program)
    irina = cards["irina@example.com"]
    assert irina.member.name == "Ирина Петрова" and irina.member.phone == "+79161234567"
    assert irina.member.birthday is not None and irina.member.birthday.isoformat() == "1990-04-21"
    opening = db_session.scalar(
        select(LedgerEntry).where(LedgerEntry.card_id == irina.id, LedgerEntry.kind == "adjustment")
    )
    assert opening is not None and opening.points == 250
    assert (opening.reason, opening.source) == (OPENING_BALANCE_REASON, "tester")
    oleg = cards["oleg@example.com"]
    assert oleg.points_balance == irina.points_balance - 250  # both got the same welcome


def test_bad_rows_are_reported_by_line_and_the_rest_imported(db_session: Session) -> None:
    program = make_program(db_session)
    existing = make_card(db_session, program, email="known@example.com")
    balance = existing.points_balance
    text = (
        "name,email,points,birthday\n"
        "Good One,good@example.com,,\n"
        ",nameless@example.com,,\n"
        "Bad Mail,not-an-address,,\n"
        "\n"
        "Known,KNOWN@example.com,500,\n"
        "Minus,minus@example.com,-5,\n"
        "Future,future@example.com,,2999-01-01\n"
        '"Quoted, Name",quoted@example.com,7,\n'
    )
    report = run_import(db_session, program, text)
    assert report.created == 2 and report.existing == 1
    rejected = dict(report.rejected)
    assert sorted(rejected) == [3, 4, 7, 8]
    assert rejected[3].startswith("name:") and rejected[4].startswith("email:")
    assert "points" in rejected[7] and rejected[8].startswith("birthday:")
    cards = cards_of(db_session, program)
    assert cards["quoted@example.com"].member.name == "Quoted, Name"
    assert "nameless@example.com" not in cards and "minus@example.com" not in cards
    db_session.refresh(existing)
    assert existing.points_balance == balance  # an existing member is left alone


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("email\nx@example.com\n", "lacks the column name"),
        ("full name;mail\nA;a@example.com\n", "lacks the columns name, email"),
    ],
)
def test_a_file_without_the_needed_columns_imports_nothing(
    db_session: Session, text: str, message: str
) -> None:
    program = make_program(db_session)
    with pytest.raises(ImportFileError, match=message):
        run_import(db_session, program, text)
    assert cards_of(db_session, program) == {}


def test_a_large_import_commits_in_batches_and_can_be_run_again(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = make_program(db_session)
    commits: list[int] = []
    original = db_session.commit

    def counting_commit() -> None:
        commits.append(1)
        original()

    monkeypatch.setattr(db_session, "commit", counting_commit)
    rows = COMMIT_EVERY + 3
    text = "name,email\n" + "".join(f"Member {n},m{n}@example.com\n" for n in range(rows))
    assert run_import(db_session, program, text).created == rows
    assert len(commits) == 2  # one full batch, then the rest
    again = run_import(db_session, program, text)
    assert (again.created, again.existing) == (0, rows)


def test_the_export_lists_every_member_with_wallets_and_defuses_formulas(
    db_session: Session,
) -> None:
    program = make_program(db_session)
    other = make_program(db_session)
    plain = make_card(db_session, program, name="Анна", email="anna@example.com")
    sneaky = make_card(db_session, program, name="=HYPERLINK(1)", email="s@example.com")
    make_card(db_session, other, email="elsewhere@example.com")
    device = AppleDevice(library_identifier="lib-1", push_token="ab" * 32)
    db_session.add(device)
    db_session.flush()
    db_session.add(AppleRegistration(device_id=device.id, card_id=plain.id))
    db_session.commit()

    rows = list(export_rows(db_session, program))
    assert rows[0] == list(EXPORT_COLUMNS)
    by_email = {row[2]: dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in rows[1:]}
    assert set(by_email) == {"anna@example.com", "s@example.com"}
    anna = by_email["anna@example.com"]
    assert (anna["number"], anna["name"], anna["apple_devices"]) == (plain.number, "Анна", "1")
    assert anna["points"] == str(plain.points_balance) and anna["google_wallet"] == "no"
    assert by_email["s@example.com"]["name"] == "'=HYPERLINK(1)"
    assert by_email["s@example.com"]["number"] == sneaky.number

    text = "".join(export_csv(db_session, program))
    assert list(csv.reader(io.StringIO(text))) == rows


def test_the_cli_imports_with_a_report_and_exports(
    app: Flask, db_session: Session, tmp_path: Path
) -> None:
    program = make_program(db_session)
    db_session.commit()
    source = tmp_path / "members.csv"
    source.write_text("\ufeff" + GOOD + "Broken;nope;;;\n", encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["passes", "import-members", str(source), "--program", program.slug]
    )
    assert result.exit_code == 1  # a row was rejected
    assert "2 members created, 0 already members, 1 rows rejected" in result.stdout
    assert "line 4: email:" in result.stderr
    assert len(cards_of(db_session, program)) == 2

    again = runner.invoke(args=["passes", "import-members", str(source), "--program", program.slug])
    assert "0 members created, 2 already members" in again.stdout

    exported = runner.invoke(args=["passes", "export-members", "--program", program.slug])
    assert exported.exit_code == 0
    lines = list(csv.reader(io.StringIO(exported.stdout)))
    assert lines[0] == list(EXPORT_COLUMNS) and len(lines) == 3

    missing = runner.invoke(args=["passes", "import-members", str(source), "--program", "nope"])
    assert missing.exit_code != 0 and "there is no program 'nope'" in missing.stderr
    count = db_session.scalar(select(func.count()).select_from(Member))
    assert count == 2
