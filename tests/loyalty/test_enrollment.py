from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import BARCODE_KEY, make_program
from passes.loyalty.barcode import parse_till_input
from passes.loyalty.card_numbers import is_valid_card_number
from passes.loyalty.enrollment import ApplicantErrors, enroll, validate_applicant
from passes.loyalty.models import Card, Member

TODAY = date(2026, 11, 23)


def valid(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "name": "  Анна   Смирнова ",
        "email": "Anna.Smirnova@Example.COM",
        "phone": "+7 (916) 123-45-67",
        "birthday": "1991-04-21",
        "consent": True,
        "today": TODAY,
    }
    fields.update(overrides)
    return fields


def test_valid_input_is_normalised() -> None:
    applicant = validate_applicant(**valid())  # type: ignore[arg-type]
    assert applicant.name == "Анна Смирнова"
    assert applicant.email == "Anna.Smirnova@example.com"  # domain lower-cased, local part kept
    assert applicant.phone == "+79161234567"
    assert applicant.birthday == date(1991, 4, 21)


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"name": "   "}, "name", "enter your name"),
        ({"name": "x" * 121}, "name", "at most 120"),
        ({"email": ""}, "email", "enter your e-mail"),
        ({"email": "anna@"}, "email", "not valid"),
        ({"email": "anna at example.com"}, "email", "not valid"),
        ({"phone": "12ab"}, "phone", "7 to 15 digits"),
        ({"phone": "+1234"}, "phone", "7 to 15 digits"),
        ({"birthday": "21.04.1991"}, "birthday", "as a date"),
        ({"birthday": "2027-01-01"}, "birthday", "future"),
        ({"birthday": "1890-01-01"}, "birthday", "year"),
        ({"consent": False}, "consent", "agree"),
    ],
)
def test_each_bad_field_gets_its_own_message(
    overrides: dict[str, object], field: str, text: str
) -> None:
    with pytest.raises(ApplicantErrors) as caught:
        validate_applicant(**valid(**overrides))  # type: ignore[arg-type]
    assert set(caught.value.errors) == {field}
    assert text in str(caught.value.errors[field])


def test_all_errors_are_reported_at_once() -> None:
    with pytest.raises(ApplicantErrors) as caught:
        validate_applicant(**valid(name="", email="x", consent=False))  # type: ignore[arg-type]
    assert set(caught.value.errors) == {"name", "email", "consent"}


def test_enrollment_issues_a_card_with_independent_credentials(db_session: Session) -> None:
    program = make_program(db_session)
    applicant = validate_applicant(**valid())  # type: ignore[arg-type]
    enrollment = enroll(db_session, program, applicant, barcode_key=BARCODE_KEY)
    card = enrollment.card
    assert enrollment.created
    assert card.number.startswith(program.card_prefix) and is_valid_card_number(card.number)
    assert len(card.serial_number) >= 16 and card.number not in card.serial_number
    assert len(card.authentication_token) >= 32
    assert len(card.page_token) >= 32
    assert len({card.serial_number, card.authentication_token, card.page_token}) == 3
    scanned = parse_till_input(BARCODE_KEY, card.barcode_payload)
    assert scanned is not None and scanned.scanned and scanned.card_number == card.number
    assert card.tier_key == "lover" and program.tier_name(card.tier_key) == "Любитель"
    assert card.points_balance == 0 and card.content_version == 1
    assert card.member.consent_at.tzinfo is not None


def test_same_email_in_any_case_returns_the_existing_card(db_session: Session) -> None:
    program = make_program(db_session)
    first = enroll(
        db_session,
        program,
        validate_applicant(**valid()),
        barcode_key=BARCODE_KEY,  # type: ignore[arg-type]
    )
    again = enroll(
        db_session,
        program,
        validate_applicant(**valid(email="ANNA.SMIRNOVA@example.com", name="Someone")),  # type: ignore[arg-type]
        barcode_key=BARCODE_KEY,
    )
    assert not again.created
    assert again.card.id == first.card.id
    assert again.card.member.name == "Анна Смирнова"  # nothing overwritten
    assert db_session.scalar(select(func.count()).select_from(Card)) == 1
    assert db_session.scalar(select(func.count()).select_from(Member)) == 1


def test_same_email_in_another_program_is_another_member(db_session: Session) -> None:
    one, two = make_program(db_session), make_program(db_session)
    applicant = validate_applicant(**valid())  # type: ignore[arg-type]
    a = enroll(db_session, one, applicant, barcode_key=BARCODE_KEY)
    b = enroll(db_session, two, applicant, barcode_key=BARCODE_KEY)
    assert a.created and b.created and a.card.id != b.card.id
