"""Finding members and reading one member's record, scoped to their program."""

from __future__ import annotations

from sqlalchemy.orm import Session

from factories import make_card, make_program
from passes.loyalty.card_numbers import format_card_number
from passes.loyalty.ledger import adjust
from passes.members.directory import PAGE_SIZE, find_card, record, search


def test_search_by_number_name_email_and_phone_within_the_program(db_session: Session) -> None:
    program = make_program(db_session)
    other = make_program(db_session)
    anna = make_card(db_session, program, name="Анна Смирнова", email="Anna.S@example.com")
    boris = make_card(db_session, program, name="Boris 100%_sure", email="boris@example.com")
    boris.member.phone = "+79161234567"
    stranger = make_card(db_session, other, name="Анна Чужая", email="anna@other.example")
    db_session.commit()

    def found(query: str) -> set[str]:
        return {card.number for card in search(db_session, program, query)}

    assert found("") == {anna.number, boris.number}
    assert found("анна") == {anna.number}  # capitalised for the match
    assert found("СМИРНОВА") == {anna.number}
    assert found("anna.s@EXAMPLE") == {anna.number}
    assert found(format_card_number(anna.number)) == {anna.number}  # typed with spaces
    assert found(anna.number[-6:]) == {anna.number}
    assert found("916 123") == {boris.number}
    assert found("100%_") == {boris.number} and found("%") == {boris.number}
    assert found("_") == {boris.number}  # wildcards are matched literally
    assert found(stranger.number) == set() and found("Чужая") == set()
    assert find_card(db_session, program, stranger.number) is None
    assert find_card(db_session, program, format_card_number(anna.number)) == anna


def test_search_pages_newest_first(db_session: Session) -> None:
    program = make_program(db_session)
    cards = [make_card(db_session, program) for _ in range(PAGE_SIZE + 2)]
    db_session.commit()
    first = search(db_session, program, "")
    assert len(first) == PAGE_SIZE and first[0].id == cards[-1].id
    rest = search(db_session, program, "", after_id=first[-1].id)
    assert [card.id for card in rest] == [cards[1].id, cards[0].id]


def test_a_record_holds_the_ledger_newest_first_and_the_wallets(db_session: Session) -> None:
    program = make_program(db_session)
    card = make_card(db_session, program)
    adjust(db_session, card, points=5, reason="goodwill", actor="admin@example.com")
    adjust(db_session, card, points=-2, reason="typo", actor="admin@example.com")
    db_session.commit()
    found = record(db_session, card)
    assert found.entries == len(found.ledger) >= 2
    assert [(e.points, e.reason) for e in found.ledger[:2]] == [(-2, "typo"), (5, "goodwill")]
    assert found.apple_devices == [] and found.google is None
