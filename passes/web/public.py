"""Customer pages: join a program, see the card, download it into a wallet. No login: the card
page's URL carries an unguessable token."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from functools import lru_cache

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from passes.db import utcnow
from passes.loyalty.enrollment import ApplicantErrors, enroll, validate_applicant
from passes.loyalty.models import Card, Program
from passes.loyalty.view import card_view
from passes.marketing.models import Campaign
from passes.push.google_objects import save_link
from passes.qr import qr_png, qr_svg
from passes.text import N_, Text
from passes.wallet.apple.images import render_google_images
from passes.wallet.google.save_link import JwtTooLong
from passes.web import FORM_EXPIRED
from passes.web.conditional import mark_private, not_modified
from passes.web.context import app_state, db

public = Blueprint("public", __name__)
log = logging.getLogger(__name__)

LINK_RESEND_INTERVAL = timedelta(minutes=10)
JOIN_FIELDS = ("name", "email", "phone", "birthday")


def _program_or_404(slug: str) -> Program:
    program = db().scalar(select(Program).where(Program.slug == slug))
    if program is None:
        abort(404, description=N_("There is no loyalty program at this address."))
    return program


def _card_or_404(token: str) -> Card:
    card = db().scalar(select(Card).where(Card.page_token == token)) if len(token) < 80 else None
    if card is None:
        abort(
            404, description=N_("This card link is not valid. Ask for a new one on the join page.")
        )
    return card


def card_url(card: Card) -> str:
    """The card page's public address (sent by e-mail, so absolute)."""
    return f"{current_app.config['PUBLIC_URL']}/c/{card.page_token}"


@public.get("/")
def index() -> str:
    programs = db().scalars(select(Program).order_by(Program.name)).all()
    return render_template("index.html", programs=programs)


def _render_join(
    program: Program, values: dict[str, str], errors: Mapping[str, str | Text], status: int
) -> tuple[str, int]:
    return (
        render_template("join.html", program=program, values=values, errors=errors),
        status,
    )


@public.route("/p/<slug>/join", methods=["GET", "POST"])
def join(slug: str) -> BaseResponse | tuple[str, int]:
    program = _program_or_404(slug)
    if request.method == "GET":
        return _render_join(program, {}, {}, 200)

    values = {name: request.form.get(name, "") for name in JOIN_FIELDS}
    try:
        applicant = validate_applicant(
            **values, consent=request.form.get("consent") == "yes", today=utcnow().date()
        )
    except ApplicantErrors as exc:
        return _render_join(program, values, exc.errors, 422)

    session = db()
    applicant = replace(applicant, language=str(get_locale()))
    enrollment = enroll(session, program, applicant, barcode_key=app_state().barcode_key)
    if enrollment.created:
        session.commit()
        return redirect(url_for("public.card_page", token=enrollment.card.page_token), 303)

    # Someone already holds a card for this address: never reveal it here, send its link there.
    outcome, status = _resend_card_link(enrollment.card, program)
    return (
        render_template(
            "already_member.html", program=program, email=applicant.email, outcome=outcome
        ),
        status,
    )


def _resend_card_link(card: Card, program: Program) -> tuple[str, int]:
    """Mail the card's link unless one went out recently; ``link_sent_at`` moves only on success.

    Outcomes: "sent", "logged" (no mail server configured), "recent", "failed".
    """
    now = utcnow()
    if card.link_sent_at is not None and now - card.link_sent_at < LINK_RESEND_INTERVAL:
        return "recent", 200
    try:
        delivered = app_state().mailer.send(
            card.member.email,
            gettext("Your %(program)s card", program=program.name),
            gettext(
                "Here is the link to your %(program)s loyalty card:\n\n%(link)s\n\n"
                "Open it on your phone to add the card to your wallet.",
                program=program.name,
                link=card_url(card),
            ),
        )
    except (smtplib.SMTPException, OSError):
        log.exception("could not send the card link of card %s", card.id)
        return "failed", 503
    card.link_sent_at = now
    db().commit()
    return ("sent" if delivered else "logged"), 200


@public.get("/c/<token>")
def card_page(token: str) -> str:
    card = _card_or_404(token)
    state = app_state()
    return render_template(
        "card.html",
        card=card,
        view=card_view(card),
        apple_available=state.apple is not None,
        google_available=state.google is not None,
    )


@public.get("/c/<token>/qr.png")
def card_qr_png(token: str) -> Response:
    card = _card_or_404(token)
    return _private(Response(qr_png(card.barcode_payload), mimetype="image/png"))


@public.get("/c/<token>/qr.svg")
def card_qr_svg(token: str) -> Response:
    card = _card_or_404(token)
    return _private(Response(qr_svg(card.barcode_payload), mimetype="image/svg+xml"))


@public.get("/c/<token>/card.pkpass")
def card_pass(token: str) -> BaseResponse:
    card = _card_or_404(token)
    issuer = app_state().apple
    if issuer is None:
        abort(503, description=N_("Apple Wallet passes are not available right now."))
    view = card_view(card)
    if not_modified(view.updated_at):
        response = Response(status=304)
    else:
        response = Response(issuer.build(view), mimetype="application/vnd.apple.pkpass")
        last4 = card.number[-4:]
        response.headers["Content-Disposition"] = (
            f'attachment; filename="{card.program.slug}-{last4}.pkpass"'
        )
    return mark_private(response, view.updated_at)


@public.get("/c/<token>/google-wallet")
def card_google_wallet(token: str) -> BaseResponse:
    """Send the member to Google's save page for their card (the object is written first)."""
    card = _card_or_404(token)
    google = app_state().google
    if google is None:
        abort(404, description=N_("Google Wallet cards are not offered by this shop."))
    try:
        url = save_link(db(), card, google)
    except JwtTooLong:
        abort(
            503,
            description=N_("Google Wallet cannot be reached right now. Please try again later."),
        )
    response = redirect(url, code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


@public.get("/p/<slug>/google/<any(logo, hero):kind>.png")
def google_image(slug: str, kind: str) -> Response:
    """The program's logo and hero image for Google Wallet, which fetches them from us."""
    program = _program_or_404(slug)
    images = _google_images(
        program.name,
        program.background_color,
        program.foreground_color,
        program.icon_image,
        program.strip_image,
    )
    response = Response(images[kind], mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=86400"  # URLs carry ?v=<design>
    return response


@public.get("/p/<slug>/offers/c<int:campaign_id>.png")
def offer_image(slug: str, campaign_id: int) -> Response:
    """A campaign's picture, public like the offer it goes with (Google Wallet fetches it)."""
    program = _program_or_404(slug)
    image = db().scalar(
        select(Campaign.image).where(
            Campaign.id == campaign_id,
            Campaign.program_id == program.id,
            Campaign.status.in_(("sending", "sent")),
        )
    )
    if image is None:
        abort(404)
    response = Response(image, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=86400"  # a campaign's picture is fixed
    return response


@lru_cache(maxsize=32)
def _google_images(
    title: str, background: str, foreground: str, icon: bytes | None, strip: bytes | None
) -> dict[str, bytes]:
    return render_google_images(
        title=title, background=background, foreground=foreground, icon=icon, strip=strip
    )


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@public.app_errorhandler(CSRFError)
def csrf_error(error: CSRFError) -> tuple[str, int]:
    if request.endpoint == "public.join" and request.view_args:
        program = _program_or_404(str(request.view_args["slug"]))
        values = {name: request.form.get(name, "") for name in JOIN_FIELDS}
        message = gettext(
            "Your form expired or came from another site. Please check it and send it again."
        )
        return _render_join(program, values, {"form": message}, 400)
    return render_template(
        "error.html", code=400, title=gettext("Bad request"), detail=gettext(FORM_EXPIRED)
    ), 400


@public.get("/p/<slug>/theme.css")
def theme(slug: str) -> Response:
    """The program's colours as CSS variables (colours are validated #rrggbb, safe to embed)."""
    program = _program_or_404(slug)
    css = (
        ":root{"
        f"--brand-bg:{program.background_color};"
        f"--brand-fg:{program.foreground_color};"
        f"--brand-label:{program.label_color}}}\n"
    )
    response = Response(css, mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
