"""Request and response bodies of the till API. Pydantic validates requests (strict types: an
amount of ``12.5`` or ``"1250"`` is refused, never coerced) and generates the JSON Schemas that
``/api/openapi.json`` publishes, so the description cannot drift from the code."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictInt, model_validator

Code = Annotated[
    str, Field(min_length=1, max_length=120, description="scanned QR payload or card number")
]
Key = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Minor = Annotated[StrictInt, Field(description="money in minor units (kopecks, cents)")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineIn(Strict):
    sku: Annotated[str, Field(max_length=64)] | None = None
    category: Annotated[str, Field(max_length=40)] | None = None
    amount: Minor


class PurchaseIn(Strict):
    card: Code
    amount: Minor
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    lines: Annotated[list[LineIn], Field(max_length=500)] | None = None
    store: Annotated[str, Field(max_length=120)] | None = None
    receipt: Annotated[str, Field(max_length=120)] | None = None


class RedemptionIn(Strict):
    """Either points as money against a receipt, or a catalogue reward."""

    card: Code
    reward: Key | None = None
    receipt_amount: Minor | None = None
    points: StrictInt | None = Field(default=None, description="default: the most allowed")

    @model_validator(mode="after")
    def one_kind(self) -> RedemptionIn:
        if (self.reward is None) == (self.receipt_amount is None):
            raise ValueError("give either reward or receipt_amount (points as money), not both")
        if self.reward is not None and self.points is not None:
            raise ValueError("points go with receipt_amount, not with a reward")
        return self


class RefundIn(Strict):
    amount: Minor | None = Field(default=None, description="default: all that is not refunded yet")


class TransferIn(Strict):
    from_card: Code = Field(alias="from")
    to: Code
    points: StrictInt

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ActionIn(Strict):
    card: Code
    action: Key


class CreditIn(Strict):
    card: Code
    points: StrictInt
    reason: Annotated[str, Field(min_length=1, max_length=300)]


class AdjustmentIn(CreditIn):
    pass


class TierOut(BaseModel):
    key: str
    name: str


class RewardOut(BaseModel):
    key: str
    name: str
    cost: int
    in_stock: bool


class CardOut(BaseModel):
    number: str
    member_name: str
    balance: int
    tier: TierOut | None
    discount_rate: int = Field(description="basis points that apply now (500 = 5 %)")
    rewards_available: list[RewardOut]
    lookup: Literal["scan", "typed"] = Field(
        description="scan: a genuine QR code (MAC verified); typed: a number typed or guessed"
    )


class AppliedOut(BaseModel):
    rule: str
    detail: str
    points: int


class PurchaseOut(BaseModel):
    id: int
    amount: int
    currency: str
    discount: int
    discount_rate: int
    paid: int
    points_earned: int
    cashback_points: int
    breakdown: list[AppliedOut]
    tier_changed: bool
    card: CardOut


class RefundOut(BaseModel):
    purchase_id: int
    refunded: int
    refunded_total: int
    points_reversed: int
    points_clawed_back: int
    shortfall: int = Field(description="points already spent that could not be taken back")
    card: CardOut


class RedemptionOut(BaseModel):
    entry_id: int
    points: int
    money: int = Field(description="value of the points in minor units (0 for rewards)")
    reward: str | None
    card: CardOut


class TransferOut(BaseModel):
    points: int
    sender: CardOut
    receiver: CardOut


class EntryOut(BaseModel):
    entry_id: int
    points: int
    card: CardOut


class ProgramDocumentBody(RootModel[dict[str, Any]]):
    """A program as one document (format "loyalpass.program/1"); see the README for every field."""


class ProblemOut(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
