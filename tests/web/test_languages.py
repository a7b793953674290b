"""Pages in English and Russian: chosen by the browser's Accept-Language, or by the visitor
(a cookie set by /lang/<code>, which only sends back to this site); form errors translated too;
and the catalogues complete and compiled."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from factories import make_card, make_program
from passes.web.i18n import TRANSLATIONS
from support import csrf_token
from web_staff import Staff, sign_in

ROOT = Path(__file__).resolve().parents[2]


def test_the_browser_language_is_used(client: FlaskClient, db_session: Session) -> None:
    program = make_program(db_session, name="Зерно")
    db_session.commit()
    path = f"/p/{program.slug}/join"
    russian = client.get(path, headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    page = russian.get_data(as_text=True)
    assert '<html lang="ru">' in page and "Вступить в Зерно" in page and "Получить карту" in page
    assert "Accept-Language" in russian.headers["Vary"]
    english = client.get(path, headers={"Accept-Language": "de-DE,en;q=0.5"})
    assert "Join Зерно" in english.get_data(as_text=True)
    plain = client.get(path).get_data(as_text=True)
    assert '<html lang="en">' in plain and "Get my card" in plain


def test_a_visitor_chooses_and_only_returns_to_this_site(
    client: FlaskClient, db_session: Session
) -> None:
    program = make_program(db_session)
    db_session.commit()
    path = f"/p/{program.slug}/join"
    chosen = client.get(f"/lang/ru?next={path}")
    assert chosen.status_code == 303 and chosen.location.endswith(path)
    assert "lang=ru" in chosen.headers["Set-Cookie"] and "HttpOnly" in chosen.headers["Set-Cookie"]
    page = client.get(path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Получить карту" in page  # the choice beats the browser
    for away in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        assert client.get("/lang/en", query_string={"next": away}).location == "/"
    unknown = client.get("/lang/xx")
    assert unknown.status_code == 303 and "Set-Cookie" not in unknown.headers
    client.get("/lang/en")
    assert "Get my card" in client.get(path).get_data(as_text=True)


def test_form_errors_and_the_card_page_in_russian(client: FlaskClient, db_session: Session) -> None:
    program = make_program(db_session)
    card = make_card(db_session, program)
    db_session.commit()
    client.get("/lang/ru")
    path = f"/p/{program.slug}/join"
    refused = client.post(
        path, data={"csrf_token": csrf_token(client, path), "name": "", "email": "a@b.example"}
    )
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "Введите имя." in page and "Чтобы получить карту, согласитесь" in page
    card_page = client.get(f"/c/{card.page_token}").get_data(as_text=True)
    assert "Номер карты" in card_page and "add-to-apple-wallet-ru.svg" in card_page


def test_the_catalogues_are_complete_current_and_compiled(tmp_path: Path) -> None:
    extracted = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "N_",
            "--no-location",
            "--sort-output",
            "-o",
            str(extracted),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with extracted.open("rb") as file:
        current = {message.id for message in read_po(file) if message.id}
    with (TRANSLATIONS / "messages.pot").open("rb") as file:
        committed = {message.id for message in read_po(file) if message.id}
    assert current == committed, "run pybabel extract (see babel.cfg) and update the catalogues"
    po_path = TRANSLATIONS / "ru" / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as file:
        russian = read_po(file, locale="ru")
    translated = {m.id: m.string for m in russian if m.id}
    assert set(translated) == current
    assert all(translated.values()) and not any(m.fuzzy for m in russian if m.id)
    compiled = read_mo(io.BytesIO(po_path.with_suffix(".mo").read_bytes()))
    assert {m.id: m.string for m in compiled if m.id} == translated, "run pybabel compile"


def test_the_console_sign_in_and_navigation_in_russian(
    client: FlaskClient, db_session: Session
) -> None:
    from passes.accounts.service import create_user

    program = make_program(db_session)
    create_user(
        db_session,
        program,
        email="a@ru.example",
        name="А",
        role="admin",
        password="correct horse battery",
    )
    db_session.commit()
    client.get("/lang/ru")
    form = client.get("/console/login").get_data(as_text=True)
    assert "Войти" in form and "Пароль" in form
    token = csrf_token(client, "/console/login")
    wrong = client.post(
        "/console/login", data={"csrf_token": token, "email": "a@ru.example", "password": "x" * 12}
    )
    assert wrong.status_code == 422
    assert "Неверный адрес почты или пароль." in wrong.get_data(as_text=True)
    token = csrf_token(client, "/console/login")  # a failed sign-in starts a fresh session
    signed = client.post(
        "/console/login",
        data={"csrf_token": token, "email": "a@ru.example", "password": "correct horse battery"},
    )
    assert signed.status_code == 303
    home = client.get(signed.location).get_data(as_text=True)
    assert "Дизайн карты" in home and "Выйти" in home


@pytest.mark.parametrize("name", ["scanner", "designer", "analytics"])
def test_every_message_of_a_page_script_is_in_the_catalogue(name: str) -> None:
    """A script looks its messages up by their English text: each must be listed (and so
    extracted and translated), and each listed one must still be used."""
    import json
    import re

    from passes.web import script_text

    listed = getattr(script_text, f"{name.upper()}_TEXT")
    script = (ROOT / "static" / "js" / f"{name}.js").read_text(encoding="utf-8")
    calls = re.findall(
        r'\bt\(\s*((?:result\.replayed \?\s*)?"(?:[^"\\]|\\.)*"(?:\s*:\s*"(?:[^"\\]|\\.)*")?)',
        script,
    )
    used = {
        json.loads(literal) for call in calls for literal in re.findall(r'"(?:[^"\\]|\\.)*"', call)
    }
    used |= set(re.findall(r'amountField\([^)]*"([^"]+)"\)', script))  # passed on to t(what)
    assert used == set(listed)


def test_the_scanner_in_russian(client: FlaskClient, db_session: Session) -> None:
    import json
    import re

    from passes.accounts.api_keys import issue_key

    program = make_program(db_session)
    token = issue_key(db_session, program, role="store", name="till", store=program.stores[0]).token
    db_session.commit()
    client.get("/lang/ru")
    login = client.get("/store/login").get_data(as_text=True)
    assert "Вход в сканер" in login
    signed = client.post(
        "/store/login", data={"csrf_token": csrf_token(client, "/store/login"), "api_key": token}
    )
    assert signed.status_code == 303
    page = client.get("/store").get_data(as_text=True)
    assert "Сканировать карту" in page and "Записать покупку" in page
    block = re.search(
        r'<script type="application/json" id="scanner-text">(.*?)</script>', page, re.S
    )
    assert block is not None
    text = json.loads(block.group(1))
    assert text["Card scanned."] == "Карта отсканирована."
    assert text["Earned +{points}"] == "Начислено +{points}"
    client.get("/lang/en")
    english = client.get("/store").get_data(as_text=True)
    assert '<script type="application/json" id="scanner-text">{}</script>' in english


def test_the_analytics_page_in_russian_and_its_csv_in_english(
    client: FlaskClient, staff: Staff
) -> None:
    """The page labels its tables and charts in the visitor's language; the figures the charts
    read keep their keys, and the CSV keeps the machine-readable English names."""
    import csv
    import json
    import re

    sign_in(client, staff.marketer.email)
    base = f"/console/{staff.program.slug}/analytics"
    russian = client.get(base, headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "Аналитика · Зерно · консоль loyalpass" in russian
    assert "Суммы указаны в минимальных единицах валюты RUB" in russian
    assert "По дням (последние 30 дн., Europe/Moscow)" in russian
    assert "<td>Всего участников</td>" in russian and "<td>Карт в Apple Wallet</td>" in russian
    assert '<th scope="col">Показатель</th>' in russian and "Участники по уровням" in russian
    for english in (
        "Money in minor units",
        "cards in apple wallet",
        "Per day",
        "loyalpass console",
    ):
        assert english not in russian
    block = re.search(
        r'<script type="application/json" id="analytics-text">(.*?)</script>', russian
    )
    assert block is not None and json.loads(block.group(1))["New members"] == "Новые участники"
    figures = re.search(r'id="figures">(.*?)</script>', russian, re.S)
    assert figures is not None
    overview = dict(json.loads(figures.group(1))["overview"]["rows"])
    assert overview["cards_in_apple_wallet"] == 0  # the charts look figures up by their keys

    english = client.get(base, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Money in minor units of RUB" in english and "<td>Members in all</td>" in english
    assert "Per day (last 30 days, Europe/Moscow)" in english and "Аналитика" not in english
    assert '<script type="application/json" id="analytics-text">{}</script>' in english

    exported = client.get(f"{base}/overview.csv", headers={"Accept-Language": "ru"})
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert rows[0] == ["figure", "value"] and rows[2][0] == "cards_in_apple_wallet"
    daily = client.get(f"{base}/daily.csv", headers={"Accept-Language": "ru"})
    assert daily.get_data(as_text=True).startswith("day,joined,members,purchases,paid,")


def test_console_pages_explain_themselves_in_russian(client: FlaskClient, staff: Staff) -> None:
    """The console's explanations, labels and stored values' words follow the visitor's
    language; English stays English."""
    sign_in(client, staff.admin.email)
    base = f"/console/{staff.program.slug}"
    pages = {
        "members/import": (
            ["Загрузка участников · Зерно · консоль loyalpass", "Файл CSV (UTF-8, разделитель"],
            ["A CSV file (UTF-8", "loyalpass console"],
        ),
        "webhooks": (
            ["Ваши системы узнают о событиях сразу", "t=&lt;время unix&gt;"],
            ["Your systems hear of events", "unix time"],
        ),
        "keys": (
            ["Ключи для API кассы", "<strong>партнёр</strong>", ">партнёр</option>"],
            ["Keys for the till API", "Expires after", ">partner</option>"],
        ),
        "users": (
            ["Администраторам доступно всё", "<td>clerk</td><td>кассир</td>", "Магазин (для"],
            ["Admins: everything", "<td>clerk</td><td>clerk</td>", "never"],
        ),
        "jobs": (
            ["Задачи выполняют рабочие процессы", "Push-уведомления для Apple Wallet"],
            ["Run by the worker processes", "Apple Wallet pushes", "Last started"],
        ),
        "campaigns/new": (
            ["Заголовок (на карте)", ">день рождения в этом месяце</option>", "Отправить сейчас"],
            ["Title (on the card)", "birthday month", "Send now", "Tier (tier)"],
        ),
        "design": (
            ["Изображения (PNG, JPEG, GIF или WebP", 'aria-label="Название магазина 1"'],
            ["only their pixels are kept", "Store 1 name", "Background"],
        ),
    }
    for path, (russian_words, english_words) in pages.items():
        russian = client.get(f"{base}/{path}", headers={"Accept-Language": "ru"})
        assert russian.status_code == 200, path
        text = russian.get_data(as_text=True)
        for words in russian_words:
            assert words in text, (path, words)
        for words in english_words:
            assert words not in text, (path, words)
        english = client.get(f"{base}/{path}", headers={"Accept-Language": "en"})
        assert all(words in english.get_data(as_text=True) for words in english_words), path


def test_console_form_messages_in_russian(client: FlaskClient, staff: Staff) -> None:
    import io
    import re

    sign_in(client, staff.admin.email)
    client.get("/lang/ru")
    base = f"/console/{staff.program.slug}"
    refused = client.post(
        f"{base}/keys",
        data={"csrf_token": csrf_token(client, f"{base}/keys"), "name": "", "role": "store"},
    )
    assert refused.status_code == 422
    assert "Назовите ключ (не больше 80 символов)" in refused.get_data(as_text=True)
    imported = client.post(
        f"{base}/members/import",
        data={
            "csrf_token": csrf_token(client, f"{base}/members/import"),
            "file": (io.BytesIO(b"name,email,points\n\xd0\x90,a@ru.example,5\n"), "members.csv"),
        },
    )
    report = imported.get_data(as_text=True)
    assert "Новых участников: <strong>1</strong>" in report and "members created" not in report
    member = client.get(f"{base}/members?q=a@ru.example").get_data(as_text=True)
    number = re.search(r'/members/(\d+)"', member)
    assert number is not None
    page = client.get(f"{base}/members/{number.group(1)}").get_data(as_text=True)
    assert "Записей: 1." in page and "<td>изменение вручную</td>" in page


def test_error_pages_in_russian(client: FlaskClient) -> None:
    missing = client.get("/p/no-such-program/join", headers={"Accept-Language": "ru"})
    page = missing.get_data(as_text=True)
    assert missing.status_code == 404
    assert "<h1>Не найдено</h1>" in page and "По этому адресу нет программы лояльности." in page
    nowhere = client.get("/no/such/page", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "По этому адресу ничего нет." in nowhere and "requested URL" not in nowhere
    english = client.get("/no/such/page", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "<h1>Not found</h1>" in english and "There is nothing at this address." in english
    api = client.get("/api/v1/no/such/thing", headers={"Accept-Language": "ru"})
    assert api.mimetype == "application/problem+json" and api.json is not None
    assert "requested URL was not found" in api.json["detail"]  # the APIs stay English


def test_every_job_of_the_scheduler_has_a_label(app: Flask) -> None:
    from passes.jobs import jobs
    from passes.web.labels import LABELS

    assert {job.id for job in jobs(app)} <= set(LABELS["job"])


def test_the_domain_s_messages_in_console_forms_in_russian(
    client: FlaskClient, staff: Staff
) -> None:
    """Messages the domain marks (campaigns, segments, webhooks, users, member import) are shown
    translated; the domain itself keeps saying them in English."""
    import io
    import re

    sign_in(client, staff.admin.email)
    base = f"/console/{staff.program.slug}"

    def post(path: str, data: dict[str, object], language: str = "ru") -> str:
        token = csrf_token(client, f"{base}/{path}")
        response = client.post(
            f"{base}/{path}",
            data={"csrf_token": token, **data},
            headers={"Accept-Language": language},
        )
        assert response.status_code == 422, (path, response.status_code)
        return response.get_data(as_text=True)

    campaign = {
        "title": "Кофе",
        "text": "Скидка",
        "kind": "tier",
        "valid_until": "2099-01-01T10:00",
    }
    refused = post("campaigns/new", campaign)
    assert "Уровень: выберите один из уровней программы" in refused
    assert 'id="segment.tier-error">выберите один из уровней программы<' in refused
    english = post("campaigns/new", campaign, "en")
    assert "Tier: choose one of the program&#39;s tiers" in english

    hook = post("webhooks", {"url": "http://hooks.example/x", "events": "tier.changed"})
    assert "Этот адрес использовать нельзя: URL должен начинаться с https://." in hook
    user = post("users", {"email": "nobody", "role": "marketer"})
    assert "&#39;nobody&#39; — не адрес электронной почты" in user
    header = post("members/import", {"file": (io.BytesIO(b"nom;mail\n"), "m.csv")})
    assert (
        "Ничего не загружено: в строке заголовка нет столбцов name, email (найдено: nom, mail)."
        in header
    )
    rows = b"name,email,points\n,a@ru.example,\nB,b@ru.example,x\n"
    token = csrf_token(client, f"{base}/members/import")
    report = client.post(
        f"{base}/members/import",
        data={"csrf_token": token, "file": (io.BytesIO(rows), "m.csv")},
        headers={"Accept-Language": "ru"},
    ).get_data(as_text=True)
    assert "<td>name: Введите имя.</td>" in report
    assert "<td>points: &#39;x&#39; — не целое число баллов</td>" in report

    listing = client.get(f"{base}/members").get_data(as_text=True)
    number = re.search(r'/members/(\d+)"', listing)
    assert number is not None
    page = f"members/{number.group(1)}"
    nonce = re.search(r'name="nonce" value="([0-9a-f]{32})"', client.get(f"{base}/{page}").text)
    assert nonce is not None
    too_many = {"points": "-1000000", "reason": "ошибка", "nonce": nonce.group(1)}
    token = csrf_token(client, f"{base}/{page}")
    refused_adjustment = client.post(
        f"{base}/{page}/adjust",
        data={"csrf_token": token, **too_many},
        headers={"Accept-Language": "ru"},
    )
    assert refused_adjustment.status_code == 422
    assert "— списать 1000000 нельзя." in refused_adjustment.get_data(as_text=True)


def test_the_domain_keeps_its_english() -> None:
    from passes.marketing.segments import describe
    from passes.members.csv_io import ImportFileError, read_rows
    from passes.webhooks.delivery import AddressRefused, check_url

    assert str(describe({"kind": "wallet", "wallet": "apple"})) == "card in apple wallet"
    assert str(describe({"kind": "balance", "at_least": 5})) == "balance of at least 5 points"
    with pytest.raises(AddressRefused, match=r"^the URL must start with https://$"):
        check_url("http://hooks.example/", allow_private=False)
    with pytest.raises(ImportFileError) as refused:
        list(read_rows(["\n"]))
    assert str(refused.value) == "the file is empty: it needs a header row with name and email"
    with pytest.raises(ImportFileError, match=r"lacks the column email \(found: name\)$"):
        list(read_rows(["name\n"]))
    with pytest.raises(ImportFileError, match=r"\(found: nothing\)$"):
        list(read_rows(["\ufeff\n"]))  # a byte order mark, then nothing


def test_every_column_and_figure_of_the_analytics_has_a_label(
    db_session: Session, staff: Staff
) -> None:
    """A table or figure added to passes/analytics gets its words on the page too."""
    from passes.analytics.figures import all_tables
    from passes.web.console_analytics import COLUMNS, FIGURES

    for table in all_tables(db_session, staff.program):
        assert set(table.columns) == set(COLUMNS[table.name]), table.name
        if table.name == "overview":
            assert [key for key, _value in table.rows] == list(FIGURES)


def test_a_refused_upload_is_explained_in_the_visitor_s_language(
    client: FlaskClient, staff: Staff
) -> None:
    """The designer and the campaign form say why an image is refused in the visitor's
    language; ImageError itself keeps its English."""
    from passes.wallet.apple.images import ImageError, reencode_upload

    sign_in(client, staff.marketer.email)
    base = f"/console/{staff.program.slug}"

    def upload(path: str, field: str, data: bytes, language: str) -> str:
        refused = client.post(
            f"{base}/{path}",
            data={
                "csrf_token": csrf_token(client, f"{base}/{path}"),
                field: (io.BytesIO(data), "x.png"),
            },
            headers={"Accept-Language": language},
            content_type="multipart/form-data",
        )
        assert refused.status_code == 422, path
        return refused.get_data(as_text=True)

    russian = upload("design", "image_icon", b"not an image", "ru")
    assert (
        "<code>images.icon</code>: файл в поле «Значок» не удалось прочитать; "
        "загрузите файл PNG, JPEG, GIF или WebP</li>" in russian
    )
    english = upload("design", "image_icon", b"not an image", "en")
    assert (
        "<code>images.icon</code>: icon image could not be read; "
        "upload a PNG, JPEG, GIF or WebP file</li>" in english
    )
    campaign = {"title": "Кофе", "text": "Скидка", "kind": "all", "valid_until": "2099-01-01T10:00"}
    token = csrf_token(client, f"{base}/campaigns/new")
    refused = client.post(
        f"{base}/campaigns/new",
        data={"csrf_token": token, **campaign, "image": (io.BytesIO(b""), "empty.png")},
        headers={"Accept-Language": "ru"},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    assert 'id="image-error">файл в поле «Картинка» пуст<' in refused.get_data(as_text=True)

    with pytest.raises(ImageError) as caught:
        reencode_upload(b"", "offer")
    assert str(caught.value) == "offer image is empty"
    with pytest.raises(ImageError) as caught:
        reencode_upload(b"junk", "banner")  # a name of no form: said as it is
    assert str(caught.value).startswith("banner image could not be read;")


def test_the_scanner_sign_in_says_why_a_key_is_refused_in_the_visitor_s_language(
    client: FlaskClient, db_session: Session
) -> None:
    """The store sign-in page translates why a key does not open it; the till API's problem
    detail about the same key stays English whatever the browser asks for."""
    from passes.accounts.api_keys import KeyRejected, issue_key, split_token
    from passes.db import utcnow

    program = make_program(db_session)
    card = make_card(db_session, program)
    revoked = issue_key(db_session, program, role="store", name="old", store=program.stores[0])
    revoked.record.revoked_at = utcnow()
    db_session.commit()

    def sign_in_page(token: str, language: str) -> str:
        response = client.post(
            "/store/login",
            data={"csrf_token": csrf_token(client, "/store/login"), "api_key": token},
            headers={"Accept-Language": language},
        )
        assert response.status_code == 422
        return response.get_data(as_text=True)

    assert "Войти не удалось: API-ключ отозван." in sign_in_page(revoked.token, "ru")
    assert (
        "Войти не удалось: API-ключ записан неверно (ожидается lp_&lt;префикс&gt;_&lt;секрет&gt;)."
        in sign_in_page("not-a-key", "ru")
    )
    assert "Cannot sign in: the API key has been revoked." in sign_in_page(revoked.token, "en")
    assert (
        "Cannot sign in: the API key is malformed (expected lp_&lt;prefix&gt;_&lt;secret&gt;)."
        in sign_in_page("not-a-key", "en")
    )

    for token, detail in (
        (revoked.token, "the API key has been revoked"),
        ("not-a-key", "the API key is malformed (expected lp_<prefix>_<secret>)"),
    ):
        api = client.get(
            f"/api/v1/cards/{card.number}",
            headers={"Authorization": f"Bearer {token}", "Accept-Language": "ru"},
        )
        assert api.status_code == 401 and api.json is not None
        assert api.json["detail"] == detail
    with pytest.raises(KeyRejected, match=r"^the API key is malformed"):
        split_token("lp__")


def test_the_designer_says_a_document_s_problems_in_the_visitor_s_language(
    client: FlaskClient, staff: Staff, db_session: Session
) -> None:
    """The program document's and the rules' checks: translated on the designer's page and in its
    preview's problems (read only by its script), by the same field paths; the programs API and
    the exceptions keep the English."""
    import html
    import json
    import re

    from passes.accounts.api_keys import issue_key
    from passes.loyalty.program_document import ProgramDocumentError, parse_program_document
    from passes.loyalty.rules import RulesError, parse_rules

    sign_in(client, staff.admin.email)
    base = f"/console/{staff.program.slug}/design"
    page = client.get(base).get_data(as_text=True)
    form = {
        name: html.unescape(value)
        for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page)
        if not name.startswith("remove_")
    }
    form["rules"] = json.dumps({"earning": {"points": -1}, "currency": "rub"})
    form["store_0_latitude"] = "north"
    form["name"] = ""

    def save(language: str) -> str:
        refused = client.post(base, data=form, headers={"Accept-Language": language})
        assert refused.status_code == 422
        return refused.get_data(as_text=True)

    russian = save("ru")
    for problem in (
        "<code>name</code>: не может быть пустым</li>",
        "<code>stores[0].latitude</code>: должно быть числом</li>",
        "<code>rules.currency</code>: должно быть кодом ISO 4217: три заглавные латинские буквы",
        "<code>rules.earning.points</code>: должно быть не меньше 0</li>",
    ):
        assert problem in russian, problem
    assert "must be" not in russian
    english = save("en")
    assert "<code>rules.earning.points</code>: must be at least 0</li>" in english
    assert "<code>stores[0].latitude</code>: must be a number</li>" in english

    preview = client.post(f"{base}/preview/apple.png", data=form, headers={"Accept-Language": "ru"})
    assert preview.status_code == 422 and "Accept-Language" in preview.headers["Vary"]
    problems = preview.get_json()["errors"]
    assert {"field": "rules.earning.points", "message": "должно быть не меньше 0"} in problems
    assert {"field": "name", "message": "не может быть пустым"} in problems
    in_english = client.post(f"{base}/preview/apple.png", data=form).get_json()["errors"]
    assert {"field": "rules.earning.points", "message": "must be at least 0"} in in_english

    admin = issue_key(db_session, staff.program, role="admin", name="api").token
    db_session.commit()
    headers = {"Authorization": f"Bearer {admin}", "Accept-Language": "ru"}
    path = f"/api/v1/programs/{staff.program.slug}"
    document = client.get(path, headers=headers).get_json()
    document["rules"]["earning"]["points"] = -1
    api = client.put(path, json=document, headers=headers)
    assert api.status_code == 422 and api.json is not None
    assert api.json["detail"] == "rules.earning.points: must be at least 0"
    assert api.json["errors"] == [{"path": "rules.earning.points", "message": "must be at least 0"}]

    with pytest.raises(RulesError) as rules:
        parse_rules({"earning": {"points": -1}, "tiers": {"levels": [{"key": "a!"}]}})
    assert rules.value.errors == [
        ("earning.points", "must be at least 0"),
        (
            "tiers.levels[0].key",
            "must be 1-40 characters of a-z, 0-9, '_' and '-', starting with a letter or digit",
        ),
        ("tiers.levels[0].name", "is required"),
        ("tiers.levels[0].threshold", "is required"),
    ]
    assert str(rules.value).startswith("invalid loyalty rules: earning.points: must be at least 0;")
    with pytest.raises(ProgramDocumentError) as document_error:
        parse_program_document({**document, "stores": [{"name": "A"}, {"name": "A"}]})
    assert document_error.value.errors == [
        ("stores[1].name", "'A' appears twice"),
        ("rules.earning.points", "must be at least 0"),
    ]
    assert str(document_error.value) == (
        "stores[1].name: 'A' appears twice; rules.earning.points: must be at least 0"
    )
