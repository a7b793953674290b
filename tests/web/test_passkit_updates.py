"""The update tag with real commits (no rolled-back test transaction), on both engines: only
changed passes are listed, and no change is lost when writers commit while a device lists."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from factories import make_card, make_program
from passes import create_app
from passes.db import make_sessionmaker
from passes.loyalty.ledger import adjust, lock_card
from passes.loyalty.models import Card, Program
from passes.push.models import AppleDevice, AppleRegistration
from passes.wallet.apple.devcerts import DevChain
from support import PASS_TYPE_IDENTIFIER, app_config

CARDS = 6


@dataclass
class World:
    app: Flask
    maker: sessionmaker[Session]
    device: str
    cards: list[tuple[int, str, str]]  # (id, serial, authentication token)

    def listing(self, client: FlaskClient, tag: str | None) -> tuple[list[str], str | None]:
        path = f"/passkit/v1/devices/{self.device}/registrations/{PASS_TYPE_IDENTIFIER}"
        response = client.get(path, query_string={"passesUpdatedSince": tag} if tag else None)
        if response.status_code == 204:
            return [], tag
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        return body["serialNumbers"], body["lastUpdated"]


@pytest.fixture
def world(dev_chain: DevChain, database_url: str, engine: Engine) -> Iterator[World]:
    app = create_app(app_config(dev_chain, database_url))
    maker = make_sessionmaker(engine)
    slug = f"tag-{uuid.uuid4().hex[:8]}"
    device = uuid.uuid4().hex
    with maker() as session:
        program = make_program(session, slug=slug)
        cards = [make_card(session, program) for _ in range(CARDS)]
        session.commit()
        found = [(card.id, card.serial_number, card.authentication_token) for card in cards]
    client = app.test_client()
    for _card_id, serial, token in found:
        response = client.post(
            f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE_IDENTIFIER}/{serial}",
            json={"pushToken": "ab" * 32},
            headers={"Authorization": f"ApplePass {token}"},
        )
        assert response.status_code == 201
    yield World(app, maker, device, found)
    app.extensions["passes"].engine.dispose()
    with maker() as session:
        session.execute(delete(Program).where(Program.slug == slug))
        session.execute(delete(AppleDevice).where(AppleDevice.library_identifier == device))
        session.commit()


def change(world: World, card_id: int, points: int = 5, hold: float = 0.0) -> None:
    """A committed balance change; ``hold`` keeps the transaction open after writing."""
    with world.maker() as session:
        card = lock_card(session, card_id)
        adjust(session, card, points=points, reason="test", actor="test")
        session.flush()
        time.sleep(hold)
        session.commit()


def test_only_passes_changed_since_the_tag_are_listed(world: World) -> None:
    client = world.app.test_client()
    serials, tag = world.listing(client, None)
    assert serials == sorted(serial for _id, serial, _token in world.cards)
    assert world.listing(client, tag) == ([], tag)  # nothing changed: 204

    change(world, world.cards[2][0])
    serials, next_tag = world.listing(client, tag)
    assert serials == [world.cards[2][1]]
    assert next_tag is not None and next_tag != tag
    assert world.listing(client, next_tag)[0] == []

    # A design change touches every pass of the program.
    with world.maker() as session:
        program = session.get(Card, world.cards[0][0]).program  # type: ignore[union-attr]
        program.background_color = "#123456"
        session.commit()
    serials, _ = world.listing(client, next_tag)
    assert serials == sorted(serial for _id, serial, _token in world.cards)


def test_no_change_is_lost_while_writers_commit_during_listings(world: World) -> None:
    """A device that downloads whatever is listed ends with every card's final balance, even
    when writers hold their transactions open across the device's listings."""
    client = world.app.test_client()
    _, tag = world.listing(client, None)
    seen: dict[str, int] = {}
    serial_to_id = {serial: card_id for card_id, serial, _token in world.cards}

    def download(serials: list[str]) -> None:
        with world.maker() as session:
            for serial in serials:
                seen[serial] = session.get(Card, serial_to_id[serial]).points_balance  # type: ignore[union-attr]

    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(12):
                change(world, rng.choice(world.cards)[0], hold=rng.choice([0.0, 0.02, 0.05]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(seed,)) for seed in range(3)]
    for thread in writers:
        thread.start()
    while any(thread.is_alive() for thread in writers):
        serials, tag = world.listing(client, tag)
        download(serials)
        time.sleep(0.005)
    for thread in writers:
        thread.join()
    assert not errors, errors
    serials, tag = world.listing(client, tag)  # the device's next poll after the last push
    download(serials)

    with world.maker() as session:
        actual = {
            serial: session.get(Card, card_id).points_balance  # type: ignore[union-attr]
            for card_id, serial, _token in world.cards
        }
    changed = {serial for serial, balance in actual.items() if balance}
    assert changed, "the writers changed nothing"
    assert {serial: seen.get(serial, 0) for serial in actual} == actual


def test_concurrent_identical_registrations_never_duplicate(world: World) -> None:
    _card_id, serial, token = world.cards[0]
    device = uuid.uuid4().hex
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def run() -> None:
        client = world.app.test_client()
        barrier.wait(timeout=30)
        response = client.post(
            f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE_IDENTIFIER}/{serial}",
            json={"pushToken": "cd" * 32},
            headers={"Authorization": f"ApplePass {token}"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert sorted(statuses) == [200] * 5 + [201]
        with world.maker() as session:
            count = session.scalar(
                select(func.count())
                .select_from(AppleRegistration)
                .join(AppleDevice)
                .where(AppleDevice.library_identifier == device)
            )
            assert count == 1
    finally:
        with world.maker() as session:
            session.execute(delete(AppleDevice).where(AppleDevice.library_identifier == device))
            session.commit()
