"""The fast pass.json template renders exactly what the reference serialiser produces."""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from passes.wallet.apple.pass_json import PassIdentity, PassJsonTemplate, pass_json, shape_of
from passes.wallet.view import CardView, Offer
from support import IDENTITY, make_view

text = st.text(min_size=0, max_size=60)  # any Unicode, including quotes, backslashes, controls


@settings(max_examples=300, deadline=None)
@given(
    serial=st.text(min_size=1, max_size=40),
    name=text,
    tier=st.none() | text,
    balance=st.integers(min_value=0, max_value=10**12),
    payload=text,
)
def test_template_render_is_byte_identical_to_reference(
    serial: str, name: str, tier: str | None, balance: int, payload: str
) -> None:
    view = replace(
        make_view(),
        serial_number=serial,
        member_name=name,
        tier_name=tier,
        points_balance=balance,
        barcode_payload=payload,
    )
    rendered = PassJsonTemplate(view.branding, IDENTITY, shape_of(view)).render(view)
    assert rendered == pass_json(view, IDENTITY)
    assert json.loads(rendered)["storeCard"]["primaryFields"][0]["value"] == balance


def test_one_template_serves_every_card_of_the_same_shape() -> None:
    first = make_view()
    template = PassJsonTemplate(first.branding, IDENTITY, shape_of(first))
    other: CardView = replace(first, member_name='Ли "Лиса" \\ Ким\n', points_balance=7)
    assert template.render(other) == pass_json(other, IDENTITY)


def test_shapes_differ_by_tier_and_offers_and_identity() -> None:
    base = make_view()
    variants = [
        replace(base, tier_name=None),
        replace(base, offers=()),
        replace(base, offers=(Offer("a", "A", "x"), Offer("b", "B", "y"))),
    ]
    for view in variants:
        assert shape_of(view) != shape_of(base)
        rendered = PassJsonTemplate(view.branding, IDENTITY, shape_of(view)).render(view)
        assert rendered == pass_json(view, IDENTITY)
    plain = PassIdentity("pass.x", "T", None)
    rendered = PassJsonTemplate(base.branding, plain, shape_of(base)).render(base)
    assert rendered == pass_json(base, plain)
    assert b"authenticationToken" not in rendered
