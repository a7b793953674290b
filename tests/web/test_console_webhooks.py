"""The console's webhook page: admins only, an endpoint's secret shown once, bad addresses
refused with the form again, disabling, and the delivery log."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from passes.webhooks.endpoints import add_endpoint
from passes.webhooks.models import WebhookDelivery, WebhookEndpoint
from support import csrf_token
from web_staff import Staff, sign_in


@pytest.mark.parametrize("who", ["admin", "marketer", "clerk", "stranger", None])
def test_only_the_programs_admins_see_webhooks(app: Flask, staff: Staff, who: str | None) -> None:
    client = app.test_client()
    if who is not None:
        sign_in(client, getattr(staff, who).email)
    response = client.get(f"/console/{staff.program.slug}/webhooks")
    if who is None:
        assert response.status_code == 303
    else:
        assert response.status_code == (200 if who == "admin" else 403)


def test_adding_using_and_disabling_an_endpoint(
    app: Flask, client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    sign_in(client, staff.admin.email)
    base = f"/console/{staff.program.slug}/webhooks"
    token = csrf_token(client, base)

    refused = client.post(
        base, data={"csrf_token": token, "url": "https://127.0.0.1/x", "events": "tier.changed"}
    )
    assert refused.status_code == 422
    assert 'id="url-error"' in refused.get_data(as_text=True)
    refused = client.post(base, data={"csrf_token": token, "url": "https://93.184.215.14/x"})
    assert refused.status_code == 422 and 'id="events-error"' in refused.get_data(as_text=True)

    added = client.post(
        base,
        data={
            "csrf_token": token,
            "url": "https://93.184.215.14/hooks",
            "events": ["tier.changed", "campaign.finished"],
        },
    )
    assert added.status_code == 201
    secret = re.search(r'<code id="secret">(whsec_[^<]+)</code>', added.get_data(as_text=True))
    assert secret is not None
    endpoint = db_session.scalar(select(WebhookEndpoint))
    assert endpoint is not None and endpoint.secret == secret.group(1)
    assert endpoint.events == ["tier.changed", "campaign.finished"]
    assert endpoint.created_by == staff.admin.email
    later = client.get(base).get_data(as_text=True)
    assert secret.group(1) not in later and "https://93.184.215.14/hooks" in later

    db_session.add(
        WebhookDelivery(
            endpoint_id=endpoint.id,
            event_id="e" * 36,
            event_type="tier.changed",
            payload={},
            status="failed",
            attempts=8,
            last_status_code=503,
            last_error="answered 503",
        )
    )
    db_session.commit()
    log = client.get(base).get_data(as_text=True)
    assert "delivery-failed" in log and "answered 503" in log

    other = f"/console/{staff.other.slug}/webhooks/{endpoint.id}/disable"
    assert client.post(other, data={"csrf_token": token}).status_code == 403
    foreign = add_endpoint(
        db_session,
        staff.other,
        url="https://93.184.215.14/theirs",
        events=["tier.changed"],
        created_by="x",
        allow_private=False,
    )
    db_session.commit()
    through_ours = client.post(f"{base}/{foreign.endpoint.id}/disable", data={"csrf_token": token})
    assert through_ours.status_code == 404  # another program's endpoint, through our pages
    db_session.refresh(foreign.endpoint)
    assert foreign.endpoint.disabled_at is None
    assert client.post(f"{base}/999999/disable", data={"csrf_token": token}).status_code == 404
    done = client.post(f"{base}/{endpoint.id}/disable", data={"csrf_token": token})
    assert done.status_code == 303
    db_session.refresh(endpoint)
    assert endpoint.disabled_at is not None
