"""The till API: look a member up from a scan, record purchases, redemptions, refunds, transfers
and actions. Thin: parse and authorise here, decide in ``passes.loyalty.ledger``.

Every write is idempotent under the ``Idempotency-Key`` header: the first answer is stored in the
same transaction as the ledger entries, and a retry with the same key and body gets it again
without writing anything; the same key with another body is a 409.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import cache, partial
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, request, session
from flask_wtf.csrf import validate_csrf
from pydantic import BaseModel
from pydantic import ValidationError as BodyError
from sqlalchemy import Connection, Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from werkzeug.exceptions import HTTPException
from wtforms.validators import ValidationError

from passes.accounts.api_keys import (
    BY_PREFIX,
    CALLER_COLUMNS,
    Caller,
    KeyRejected,
    authenticate,
    caller_by_id,
    secret_hash,
    split_token,
    verify,
)
from passes.db import DirectConnection, utcnow
from passes.driver_sql import DriverStatement
from passes.loyalty import ledger, ledger_sql
from passes.loyalty.barcode import ScannedCode, parse_till_input
from passes.loyalty.calculator import Line, MemberContext, discount_rate
from passes.loyalty.ledger import LedgerError, lock_card, lock_cards, rules_of
from passes.loyalty.ledger_sql import CardState
from passes.loyalty.models import (
    ApiKey,
    Card,
    IdempotencyRecord,
    Program,
    Purchase,
    RewardStock,
    Store,
)
from passes.web.api.problems import Problem, problem_response
from passes.web.api.schemas import (
    ActionIn,
    AdjustmentIn,
    AppliedOut,
    CardOut,
    CreditIn,
    EntryOut,
    PurchaseIn,
    PurchaseOut,
    RedemptionIn,
    RedemptionOut,
    RefundIn,
    RefundOut,
    RewardOut,
    TierOut,
    TransferIn,
    TransferOut,
)
from passes.web.context import app_state, db, db_connection
from passes.web.staff_session import STAFF_SESSION_KEY, user_session_lapsed

till = Blueprint("till", __name__, url_prefix="/api/v1")
Body = TypeVar("Body", bound=BaseModel)
MAX_IDEMPOTENCY_KEY = 255


# --------------------------------------------------------------------------- plumbing


@till.errorhandler(Problem)
def _problem(error: Problem) -> Response:
    db().rollback()
    return error.response()


@till.errorhandler(LedgerError)
def _ledger_error(error: LedgerError) -> Response:
    db().rollback()
    return problem_response(error.status, error.code, error.detail)


@till.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    return problem_response(status, f"http_{status}", error.description or "")


def api_key(*roles: str, connection: Connection | None = None) -> Caller:
    """The authenticated key of this request, which must have one of ``roles``; read through
    ``connection`` when the route works on one (see ``db_connection``) rather than the session.

    Tills send ``Authorization: Bearer <key>``. The staff scanner page (``/store``) instead holds
    a key in its signed session cookie, and then every write must carry the page's CSRF token in
    ``X-CSRFToken``, since cookies travel with cross-site requests and bearer tokens do not.
    """
    token = bearer_token()
    if token is None:
        key = _session_key(connection)
    else:
        try:
            key = authenticate(connection or db(), token)
        except KeyRejected as exc:
            raise Problem(401, "unauthorized", str(exc)) from exc
    return require_role(key, roles)


def bearer_token() -> str | None:
    """The API key a till sends, or None when the staff page's session holds one instead."""
    header = request.headers.get("Authorization", "")
    if not header and session.get(STAFF_SESSION_KEY) is not None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "unauthorized", "send the API key as 'Authorization: Bearer <key>'")
    return token.strip()


def require_role(key: Caller, roles: tuple[str, ...]) -> Caller:
    if key.role not in roles:
        raise Problem(
            403, "forbidden", f"a {key.role} key cannot do this (needs {' or '.join(roles)})"
        )
    return key


def _session_key(connection: Connection | None) -> Caller:
    if user_session_lapsed(connection):  # a clerk disabled, or whose password changed since
        raise Problem(401, "unauthorized", "the staff session has ended; sign in again")
    try:
        key = caller_by_id(connection or db(), session[STAFF_SESSION_KEY])
    except KeyRejected as exc:
        session.pop(STAFF_SESSION_KEY, None)
        raise Problem(401, "unauthorized", "the staff session has ended; sign in again") from exc
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        try:
            validate_csrf(request.headers.get("X-CSRFToken", ""))
        except ValidationError as exc:
            raise Problem(
                403, "csrf_failed", f"missing or invalid X-CSRFToken header: {exc}"
            ) from exc
    return key


def parse(model: type[Body]) -> Body:
    """The JSON body as ``model``; a 400/415/422 problem naming the offending fields otherwise."""
    if not request.is_json:
        raise Problem(415, "unsupported_media_type", "send the body as application/json")
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise Problem(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc
    try:
        return model.model_validate(data)
    except BodyError as exc:
        errors = [
            {
                "path": ".".join(str(part) for part in error["loc"]) or "(body)",
                "message": error["msg"],
            }
            for error in exc.errors()
        ]
        first = errors[0]
        raise Problem(
            422,
            "validation_failed",
            f"{first['path']}: {first['message']}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            errors=errors,
        ) from exc


@dataclass(frozen=True)
class KeyUse:
    """This request's Idempotency-Key and the fingerprint of what it asked for."""

    api_key_id: int
    key: str
    request_hash: str

    def record(self, status: int, body: dict[str, Any]) -> dict[str, Any]:
        """The idempotency_records row that answers this request with ``status`` and ``body``."""
        return {
            "api_key_id": self.api_key_id,
            "key": self.key,
            "request_hash": self.request_hash,
            "status": status,
            "body": body,
            "created_at": utcnow(),
        }


@dataclass(frozen=True)
class StoredAnswer:
    """An operation's answer that the operation already wrote as its idempotency record (the
    purchase writes it in the same statement as the purchase, saving a round trip)."""

    status: int
    body: dict[str, Any]


Answer = tuple[int, dict[str, Any]] | StoredAnswer


def key_use(key: Caller) -> KeyUse:
    """The Idempotency-Key of this write (required) and the fingerprint of method, path and
    body, so that the same key with another request is told apart from a retry."""
    return KeyUse(key.id, *idempotency_request())


def idempotency_request() -> tuple[str, str]:
    """(Idempotency-Key, fingerprint) of this request: see :func:`key_use`."""
    idempotency_key = request.headers.get("Idempotency-Key", "").strip()
    if not idempotency_key:
        raise Problem(
            428,
            "idempotency_key_required",
            "send an Idempotency-Key header (e.g. a UUID) with every write",
        )
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise Problem(400, "idempotency_key_too_long", f"at most {MAX_IDEMPOTENCY_KEY} characters")
    fingerprint = hashlib.sha256(
        b"\n".join(
            [
                request.method.encode(),
                request.path.encode(),
                _canonical(request.get_data(cache=True)),
            ]
        )
    ).hexdigest()
    return idempotency_key, fingerprint


def idempotent(
    key: Caller,
    operation: Callable[[], Answer],
    use: KeyUse | None = None,
    *,
    transaction: Session | DirectConnection | None = None,
) -> Response:
    """Run ``operation`` (which writes but does not commit) exactly once per Idempotency-Key, in
    this request's session or the ``transaction`` the operation works in."""
    use = use or key_use(key)
    unit = transaction if transaction is not None else db()
    # Optimistic: retries are rare, so the happy path does not look the key up first. The unique
    # (api key, Idempotency-Key) index decides when the answer is written; a retry whose first
    # attempt committed is rolled back whole there and answered from the record.
    try:
        try:
            answer = operation()
        except (Problem, LedgerError):
            # A retry may fail where its first attempt succeeded (the points are spent now, or it
            # waited for that attempt's row lock): the first answer wins over the new error.
            unit.rollback()
            replay = _replay(use, unit)
            if replay is not None:
                return replay
            raise
        if isinstance(answer, StoredAnswer):
            status, body = answer.status, answer.body
        else:
            status, body = answer
            if isinstance(unit, Session):
                unit.flush()  # anything the operation left to the ORM, before the record
            unit.connection().execute(_INSERT_RECORD, use.record(status, body))
        unit.commit()
    except IntegrityError:
        # A concurrent request with the same key committed first: ours is rolled back whole.
        unit.rollback()
        replay = _replay(use, unit)
        if replay is None:
            raise
        return replay
    return _json(body, status)


_RECORDS = cast(Table, IdempotencyRecord.__table__)
_INSERT_RECORD = insert(_RECORDS)
_FIND_RECORD = select(
    IdempotencyRecord.request_hash, IdempotencyRecord.status, IdempotencyRecord.body
).where(
    IdempotencyRecord.api_key_id == bindparam("api_key_id"),
    IdempotencyRecord.key == bindparam("key"),
)


def _canonical(raw: bytes) -> bytes:
    try:
        return json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        return raw


def _replay(use: KeyUse, unit: Session | DirectConnection) -> Response | None:
    record = (
        unit.connection().execute(_FIND_RECORD, {"api_key_id": use.api_key_id, "key": use.key})
    ).first()
    if record is None:
        return None
    if record.request_hash != use.request_hash:
        raise Problem(
            409,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request; use a new key",
        )
    response = _json(record.body, record.status)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )


# --------------------------------------------------------------------------- cards


_CARD = (
    select(Card)
    .where(Card.number == bindparam("number"))
    .options(
        joinedload(Card.member, innerjoin=True),
        # The till never draws the card: the program's uploaded images stay in the database.
        joinedload(Card.program, innerjoin=True)
        .defer(Program.logo_image)
        .defer(Program.icon_image)
        .defer(Program.strip_image),
    )
)
_CARD_FOR_UPDATE = _CARD.with_for_update(of=Card).execution_options(populate_existing=True)


def _parse_code(code: str) -> ScannedCode:
    parsed = parse_till_input(app_state().barcode_key, code)
    if parsed is None:
        raise Problem(
            404,
            "unknown_card",
            f"{code[:40]!r} is neither a card number (digits with a valid check digit) nor a "
            "loyalpass QR code",
        )
    return parsed


def find_card(key: Caller, code: str, *, lock: bool = False) -> tuple[Card, bool]:
    """The card a till scanned or typed, and whether it was a genuine scan."""
    parsed = _parse_code(code)
    # One round trip: find, load what the rules need, and (for writes) lock the card row.
    query = _CARD_FOR_UPDATE if lock else _CARD
    card = db().scalar(query, {"number": parsed.card_number})
    if card is None:
        raise Problem(404, "unknown_card", f"there is no card {parsed.card_number}")
    if card.program_id != key.program_id:
        raise Problem(403, "other_program", "this card belongs to another program")
    return card, parsed.scanned


def find_card_state(
    key: Caller,
    code: str,
    connection: Connection,
    *,
    for_purchase: bool = False,
    lock: bool = False,
) -> tuple[CardState, bool]:
    """:func:`find_card` as plain values, read on ``connection`` (see ``read_card_state``)."""
    parsed = _parse_code(code)
    card = ledger_sql.read_card_state(
        connection, parsed.card_number, for_purchase=for_purchase, lock=lock
    )
    return _own_card(key, card, parsed.card_number), parsed.scanned


def _own_card(key: Caller, card: CardState | None, number: str) -> CardState:
    """``card`` (numbered ``number``) if ``key`` may use it."""
    if card is None:
        raise Problem(404, "unknown_card", f"there is no card {number}")
    if card.program_id != key.program_id:
        raise Problem(403, "other_program", "this card belongs to another program")
    return card


_STOCK = select(RewardStock.reward_key, RewardStock.remaining).where(
    RewardStock.program_id == bindparam("program_id")
)


def card_out(card: Card, scanned: bool) -> CardOut:
    """What the till shows of a loaded ORM card, now."""
    state = CardState.of(card, rules_of(card.program))
    connection = db().connection()
    member = ledger.member_context(connection, state, utcnow())
    return card_summary(connection, state, scanned, balance=card.points_balance, member=member)


def card_summary(
    connection: Connection,
    card: CardState,
    scanned: bool,
    *,
    balance: int,
    member: MemberContext,
) -> CardOut:
    """What the till shows of ``card`` holding ``balance``, for the member as ``member`` says
    (the tier and period spend may be the ones a purchase is about to write)."""
    rules = card.rules
    affordable = [reward for reward in rules.rewards if reward.cost <= balance]
    stock: dict[str, int] = {}
    if any(reward.stock is not None for reward in affordable):  # most answers need no stock
        rows = connection.execute(_STOCK, {"program_id": card.program_id})
        stock = {reward_key: remaining for reward_key, remaining in rows}
    level = rules.tier_level(member.tier_key)
    return CardOut(
        number=card.number,
        member_name=card.member_name,
        balance=balance,
        tier=TierOut(key=level.key, name=level.name) if level is not None else None,
        discount_rate=discount_rate(rules, member),
        rewards_available=[
            RewardOut(
                key=reward.key,
                name=reward.name,
                cost=reward.cost,
                in_stock=reward.stock is None or stock.get(reward.key, reward.stock) > 0,
            )
            for reward in affordable
        ],
        lookup="scan" if scanned else "typed",
    )


def source_of(key: Caller) -> str:
    """How the ledger names who did it."""
    if key.role == "store" and key.store_name is not None:
        return f"store:{key.store_name}"
    return f"{key.role}:{key.name}"


@till.get("/cards/<path:code>")
def look_up(code: str) -> Response:
    connection = db_connection().connection()
    key = api_key("store", "partner", "admin", connection=connection)
    card, scanned = find_card_state(key, code, connection)
    member = ledger.member_context(connection, card, utcnow())
    summary = card_summary(connection, card, scanned, balance=card.points_balance, member=member)
    return _json(summary.model_dump(), 200)


# --------------------------------------------------------------------------- writes


# Optimistic attempts before the last one, which locks the card (and so cannot be overtaken).
PURCHASE_ATTEMPTS = 3
PURCHASE_ROLES = ("store", "admin")
# A purchase body this small is parsed before its key is checked (so that the key and the card
# are read in one statement); anything larger is read only after the key is.
EARLY_BODY = 4096


@dataclass(frozen=True)
class CardRead:
    """A card read together with the key that asked for it (None: there is no such card)."""

    card: CardState | None
    number: str
    scanned: bool


@till.post("/purchases")
def purchase() -> Response:
    # The hot path, on a direct connection. Who is asking and the card they scanned are read in
    # one statement; the purchase is priced and, on PostgreSQL, written with this answer by one
    # more statement that applies only if the card did not change in between (else it is read
    # and priced again). Two tills on one card are rare; when they do collide, the last attempt
    # holds the card's row lock.
    direct = db_connection()
    connection = direct.connection()
    token = bearer_token()
    first: CardRead | None = None
    key: Caller | None = None
    if token is not None and (request.content_length or 0) <= EARLY_BODY:
        try:
            body = parse(PurchaseIn)
        except (Problem, HTTPException):
            api_key(*PURCHASE_ROLES, connection=connection)  # who asks is answered before what
            raise
        code = parse_till_input(app_state().barcode_key, body.card)
        if code is not None:
            key, first = _key_with_card(token, code, connection)
    if key is None:  # the staff page's key, a large body, or a code that is no card (run says)
        key = api_key(*PURCHASE_ROLES, connection=connection)
        body = parse(PurchaseIn)
    use = key_use(key)
    caller = key

    def run() -> StoredAnswer:
        lines = (
            [Line(line.amount, line.category, line.sku) for line in body.lines]
            if body.lines is not None
            else None
        )
        store_id: int | None = None
        for attempt in range(1, PURCHASE_ATTEMPTS + 1):
            locked = attempt == PURCHASE_ATTEMPTS
            with direct.serialized() if locked else nullcontext():
                if attempt == 1 and first is not None and not locked:
                    card, scanned = _own_card(caller, first.card, first.number), first.scanned
                else:
                    card, scanned = find_card_state(
                        caller, body.card, connection, for_purchase=True, lock=locked
                    )
                if attempt == 1:  # the card is answered for first, then the store
                    store_id = _purchase_store(caller, body.store, connection)
                plan = ledger.plan_purchase(
                    connection,
                    card,
                    amount=body.amount,
                    currency=body.currency,
                    lines=lines,
                    store_id=store_id,
                    receipt=body.receipt,
                    source=source_of(caller),
                    now=utcnow(),
                )
                summary = card_summary(
                    connection, card, scanned, balance=plan.rows.balance, member=plan.member_after
                )
                answered: dict[str, Any] = {}
                answer = partial(_purchase_answer, use, plan, body.currency, summary, answered)
                written = ledger_sql.write_purchase_rows(connection, card, plan.rows, answer=answer)
                if written is not None:
                    return StoredAnswer(201, answered)
        raise RuntimeError("a purchase on a locked card found the card changed")

    return idempotent(caller, run, use, transaction=direct)


@cache
def _key_with_card_statement(dialect: str) -> DriverStatement:
    """The key by its prefix and, beside it, the card for a purchase (unlocked, its purchase id
    reserved), in one statement. The card is read only if the secret's hash matches, so a wrong
    secret costs no card read (the hash is compared again, in constant time, by ``verify``)."""
    card = ledger_sql.card_state_for_purchase(dialect)
    return DriverStatement(
        BY_PREFIX.add_columns(*card.c).outerjoin(
            card, ApiKey.secret_hash == bindparam("secret_hash")
        )
    )


def _key_with_card(
    token: str, code: ScannedCode, connection: Connection
) -> tuple[Caller, CardRead]:
    """The caller of ``token`` (401, 403 as :func:`api_key`) and the card of ``code``."""
    try:
        prefix, secret = split_token(token)
        row = _key_with_card_statement(connection.dialect.name).first(
            connection,
            {"prefix": prefix, "secret_hash": secret_hash(secret), "number": code.card_number},
        )
        key = verify(row, secret)
    except KeyRejected as exc:
        raise Problem(401, "unauthorized", str(exc)) from exc
    require_role(key, PURCHASE_ROLES)
    card = ledger_sql.card_state_of(row, len(CALLER_COLUMNS))
    return key, CardRead(card, code.card_number, code.scanned)


def _purchase_answer(
    use: KeyUse,
    plan: ledger.PurchasePlan,
    currency: str,
    summary: CardOut,
    answered: dict[str, Any],
    purchase_id: int,
) -> dict[str, Any]:
    """The purchase's answer (into ``answered``) and its idempotency record, once its id is
    known."""
    quote = plan.quote
    answered.update(
        PurchaseOut(
            id=purchase_id,
            amount=quote.amount,
            currency=currency,
            discount=quote.discount,
            discount_rate=quote.discount_rate,
            paid=quote.paid,
            points_earned=quote.points,
            cashback_points=quote.cashback_points,
            breakdown=[AppliedOut(**asdict(row)) for row in quote.breakdown],
            tier_changed=plan.tier_changed,
            card=summary,
        ).model_dump()
    )
    return use.record(201, answered)


def _purchase_store(key: Caller, name: str | None, connection: Connection) -> int | None:
    """The store a purchase is recorded for: the key's own, or one named in the body (admin)."""
    if name is None:
        return key.store_id
    store_id = connection.scalar(_STORE_BY_NAME, {"program_id": key.program_id, "name": name})
    if store_id is None:
        raise Problem(422, "unknown_store", f"there is no store {name!r} in this program")
    if key.role == "store" and store_id != key.store_id:
        raise Problem(403, "other_store", "a store key records purchases for its own store")
    return int(store_id)


_STORE_BY_NAME = select(Store.id).where(
    Store.program_id == bindparam("program_id"), Store.name == bindparam("name")
)


@till.post("/purchases/<int:purchase_id>/refund")
def refund(purchase_id: int) -> Response:
    key = api_key("store", "admin")
    body = parse(RefundIn)

    def run() -> tuple[int, dict[str, Any]]:
        found = db().get(Purchase, purchase_id)
        if found is None or found.program_id != key.program_id:
            raise Problem(404, "unknown_purchase", f"there is no purchase {purchase_id}")
        card = lock_card(db(), found.card_id)
        # Read the purchase again under the card's lock: a refund that waited for it must see
        # what the one before it refunded, or both would refund the same amount.
        found = (
            db()
            .scalars(
                select(Purchase)
                .where(Purchase.id == purchase_id)
                .execution_options(populate_existing=True)
            )
            .one()
        )
        result = ledger.refund_purchase(
            db(), card, found, amount=body.amount, source=source_of(key)
        )
        out = RefundOut(
            purchase_id=found.id,
            refunded=result.refunded,
            refunded_total=found.refunded_amount,
            points_reversed=result.reversed_points,
            points_clawed_back=result.clawed_back,
            shortfall=result.shortfall,
            card=card_out(card, False),
        )
        return 200, out.model_dump()

    return idempotent(key, run)


@till.post("/redemptions")
def redemption() -> Response:
    key = api_key("store", "partner", "admin")
    body = parse(RedemptionIn)

    def run() -> tuple[int, dict[str, Any]]:
        card, scanned = find_card(key, body.card, lock=True)
        if rules_of(card.program).require_scan_for_redemption and not scanned:
            raise Problem(
                403, "scan_required", "this program redeems points only from a scanned card"
            )
        if body.reward is not None:
            result = ledger.redeem_reward(db(), card, reward_key=body.reward, source=source_of(key))
        else:
            assert body.receipt_amount is not None
            result = ledger.redeem_as_money(
                db(),
                card,
                receipt_amount=body.receipt_amount,
                points=body.points,
                source=source_of(key),
            )
        db().flush()
        out = RedemptionOut(
            entry_id=result.entry.id,
            points=result.points,
            money=result.money,
            reward=result.reward_key,
            card=card_out(card, scanned),
        )
        return 201, out.model_dump()

    return idempotent(key, run)


@till.post("/transfers")
def transfer() -> Response:
    key = api_key("store", "admin")
    body = parse(TransferIn)

    def run() -> tuple[int, dict[str, Any]]:
        sender, sender_scanned = find_card(key, body.from_card)
        receiver, receiver_scanned = find_card(key, body.to)
        sender, receiver = lock_cards(db(), sender.id, receiver.id)
        result = ledger.transfer(db(), sender, receiver, points=body.points, source=source_of(key))
        out = TransferOut(
            points=result.points,
            sender=card_out(sender, sender_scanned),
            receiver=card_out(receiver, receiver_scanned),
        )
        return 201, out.model_dump()

    return idempotent(key, run)


@till.post("/actions")
def action() -> Response:
    key = api_key("store", "partner", "admin")
    body = parse(ActionIn)

    def run() -> tuple[int, dict[str, Any]]:
        card, scanned = find_card(key, body.card, lock=True)
        entry = ledger.award_action(db(), card, action_key=body.action, source=source_of(key))
        db().flush()
        out = EntryOut(entry_id=entry.id, points=entry.points, card=card_out(card, scanned))
        return 201, out.model_dump()

    return idempotent(key, run)


@till.post("/credits")
def partner_credit() -> Response:
    """A partner business credits points it granted; the partner is the ledger's source."""
    key = api_key("partner", "admin")
    body = parse(CreditIn)

    def run() -> tuple[int, dict[str, Any]]:
        card, scanned = find_card(key, body.card, lock=True)
        if body.points <= 0 or body.points > ledger.MAX_POINTS:
            raise Problem(422, "invalid_points", "points must be a positive integer")
        entry = ledger.credit(
            db(),
            card,
            rules_of(card.program),
            kind="accrual",
            points=body.points,
            source=source_of(key),
            now=utcnow(),
            reason=body.reason,
        )
        assert entry is not None
        db().flush()
        out = EntryOut(entry_id=entry.id, points=entry.points, card=card_out(card, scanned))
        return 201, out.model_dump()

    return idempotent(key, run)


@till.post("/adjustments")
def adjustment() -> Response:
    key = api_key("admin")
    body = parse(AdjustmentIn)

    def run() -> tuple[int, dict[str, Any]]:
        card, scanned = find_card(key, body.card, lock=True)
        entry = ledger.adjust(
            db(), card, points=body.points, reason=body.reason, actor=source_of(key)
        )
        db().flush()
        out = EntryOut(entry_id=entry.id, points=entry.points, card=card_out(card, scanned))
        return 201, out.model_dump()

    return idempotent(key, run)
