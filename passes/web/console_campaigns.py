"""Console pages for campaigns: list, a form with a dry run (how many members the segment
reaches), scheduling, a campaign's progress, cancelling. Marketers and admins of the program."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from passes.accounts.models import StaffUser
from passes.db import utcnow
from passes.loyalty.ledger import rules_of
from passes.marketing.campaigns import CampaignError, Draft, cancel, checked, progress, reach
from passes.marketing.campaigns import schedule as schedule_campaign
from passes.marketing.models import Campaign
from passes.marketing.segments import KINDS, WALLETS, describe
from passes.text import N_, Text
from passes.wallet.apple.images import ImageError, reencode_upload
from passes.web.console import CONSOLE_ROLES, console, staff_page
from passes.web.context import db
from passes.web.i18n import translate

SEGMENT_FIELDS = ("tier", "days", "at_least", "from", "until", "wallet")


@console.get("/<slug>/campaigns")
@staff_page(*CONSOLE_ROLES)
def campaigns(slug: str, user: StaffUser) -> BaseResponse:
    rows = (
        db()
        .scalars(
            select(Campaign)
            .where(Campaign.program_id == user.program_id)
            .order_by(Campaign.send_at.desc(), Campaign.id.desc())
        )
        .all()
    )
    listed = [(campaign, translate(describe(campaign.segment))) for campaign in rows]
    page = render_template(
        "console_campaigns.html", user=user, program=user.program, campaigns=listed
    )
    return Response(page)


@console.route("/<slug>/campaigns/new", methods=["GET", "POST"])
@staff_page(*CONSOLE_ROLES)
def new_campaign(slug: str, user: StaffUser) -> BaseResponse:
    program = user.program
    zone = ZoneInfo(rules_of(program).timezone)
    form: dict[str, str] = {key: value.strip() for key, value in request.form.items()}
    if request.method == "GET":
        return _form(user, form, errors={}, reached=None, status=200)
    now = utcnow()
    try:
        draft = _draft(form, zone, now)
        segment = checked(program, draft, now)
    except CampaignError as exc:
        errors = {exc.field: translate(exc.text)}
        return _form(user, form, errors=errors, reached=None, status=422)
    if form.get("action") == "preview":
        return _form(user, form, errors={}, reached=reach(db(), program, segment, now), status=200)
    upload = request.files.get("image")
    if upload is not None and upload.filename:
        try:
            draft = replace(draft, image=reencode_upload(upload.read(), "offer"))
        except ImageError as exc:
            errors = {"image": translate(exc.text)}
            return _form(user, form, errors=errors, reached=None, status=422)
    campaign = schedule_campaign(db(), program, draft, user.email, now)
    db().commit()
    return redirect(url_for("console.campaign", slug=slug, campaign_id=campaign.id), 303)


@console.get("/<slug>/campaigns/<int:campaign_id>")
@staff_page(*CONSOLE_ROLES)
def campaign(slug: str, campaign_id: int, user: StaffUser) -> BaseResponse:
    found = _own_campaign(user, campaign_id)
    page = render_template(
        "console_campaign.html",
        user=user,
        program=user.program,
        campaign=found,
        segment=translate(describe(found.segment)),
        progress=progress(db(), found) if found.targeted is not None else None,
    )
    return Response(page)


@console.post("/<slug>/campaigns/<int:campaign_id>/cancel")
@staff_page(*CONSOLE_ROLES)
def cancel_campaign(slug: str, campaign_id: int, user: StaffUser) -> BaseResponse:
    found = _own_campaign(user, campaign_id)
    cancelled = cancel(db(), found)
    db().commit()
    if not cancelled:
        return Response(
            render_template(
                "error.html",
                code=409,
                title=gettext("Already started"),
                detail=gettext(
                    "This campaign has already been sent (or cancelled); it cannot be "
                    "cancelled now."
                ),
            ),
            status=409,
        )
    return redirect(url_for("console.campaign", slug=slug, campaign_id=campaign_id), 303)


def _own_campaign(user: StaffUser, campaign_id: int) -> Campaign:
    found = db().get(Campaign, campaign_id)
    if found is None or found.program_id != user.program_id:
        abort(404)
    return found


def _draft(form: dict[str, str], zone: ZoneInfo, now: datetime) -> Draft:
    send_now = form.get("when", "now") == "now"
    return Draft(
        title=form.get("title", ""),
        text=form.get("text", ""),
        segment=_segment(form),
        valid_from=_local_time(form, "valid_from", zone, default=now),
        valid_until=_local_time(form, "valid_until", zone),
        send_at=now if send_now else _local_time(form, "send_at", zone),
    )


def _segment(form: dict[str, str]) -> dict[str, Any]:
    segment: dict[str, Any] = {"kind": form.get("kind", "")}
    for field in SEGMENT_FIELDS:
        value = form.get(f"segment_{field}", "")
        if value:
            segment[field] = value
    return segment


def _local_time(
    form: dict[str, str], field: str, zone: ZoneInfo, default: datetime | None = None
) -> datetime:
    """A ``datetime-local`` field read in the program's time zone."""
    value = form.get(field, "")
    if not value and default is not None:
        return default
    try:
        return datetime.fromisoformat(value).replace(tzinfo=zone)
    except ValueError:
        raise CampaignError(field, Text(N_("give a date and time"))) from None


def _form(
    user: StaffUser,
    form: dict[str, str],
    *,
    errors: dict[str, str],
    reached: int | None,
    status: int,
) -> BaseResponse:
    rules = rules_of(user.program)
    tiers = [(level.key, level.name) for level in rules.tiers.levels] if rules.tiers else []
    page = render_template(
        "console_campaign_form.html",
        user=user,
        program=user.program,
        form=form,
        errors=errors,
        reached=reached,
        kinds=KINDS,
        wallets=WALLETS,
        tiers=tiers,
        timezone=rules.timezone,
    )
    return Response(page, status=status)
