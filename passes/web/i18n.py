"""The pages' language: English or Russian, chosen by the visitor (a link sets a cookie) or
else by the browser's Accept-Language. Flask-Babel translates templates and messages from the
catalogues in ``passes/translations`` (``.po`` edited, ``.mo`` compiled and committed; the test
suite checks they agree)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, redirect, request
from flask_babel import Babel, get_locale
from werkzeug.wrappers import Response as BaseResponse

from passes.text import TRANSLATIONS, Text, in_language

LANGUAGES = ("en", "ru")
COOKIE = "lang"

languages = Blueprint("languages", __name__)


def select_locale() -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


@languages.get("/lang/<code>")
def choose(code: str) -> BaseResponse:
    """Remember the visitor's language and go back (only to a page of this site)."""
    back = request.args.get("next", "/")
    if urlsplit(back).netloc or not back.startswith("/") or back.startswith("//"):
        back = "/"
    response: BaseResponse = redirect(back, 303)
    if code in LANGUAGES:
        response.set_cookie(
            COOKIE,
            code,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            httponly=True,
            secure=request.is_secure,
        )
    return response


def translate(text: Text | str) -> str:
    """A message of the domain (marked with ``N_``, or a :class:`Text` with its values) in the
    visitor's language; a message not in the catalogues stays as it is."""
    return in_language(text, str(get_locale()))


def register_i18n(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=select_locale)
    app.register_blueprint(languages)
    app.jinja_env.filters["translate"] = translate

    @app.context_processor
    def _languages() -> dict[str, object]:
        return {"languages": LANGUAGES, "get_locale": get_locale}

    @app.after_request
    def _vary(response: Response) -> Response:
        if response.mimetype == "text/html":  # pages are translated; the APIs' JSON is not
            response.vary.add("Accept-Language")
            response.vary.add("Cookie")
        return response
