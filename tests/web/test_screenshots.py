"""Staff pages in a real browser (Debian's chromium through Playwright), against a live server on
committed data. The scanner on a phone-sized screen: sign in, find a card by typing its number
(no camera is granted), record a purchase, survive a lost answer without recording twice. The
console: sign in with e-mail and password, schedule a campaign after asking its reach, and see
the analytics charts drawn. Screenshots are kept in test-artifacts/.

SQLite only, in a database of its own: what is checked here is the page, not the engine."""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from PIL import Image
from sqlalchemy import Engine, func, select
from werkzeug.serving import make_server

from factories import TIERS, make_card, make_program
from passes import create_app
from passes.accounts.api_keys import issue_key
from passes.accounts.service import create_user
from passes.db import make_engine, make_sessionmaker
from passes.loyalty.ledger import adjust
from passes.loyalty.models import Card, Purchase
from passes.migrate import upgrade
from passes.qr import qr_png
from passes.wallet.apple.devcerts import DevChain
from support import app_config

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("browser_ready")]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
SCALE = 3
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RULES: dict[str, Any] = {
    "currency": "RUB",
    "earning": {"points": 1, "per_amount": 1000},
    "points_as_money": {"point_value": 100, "max_share": 3000},
    "rewards": [{"key": "free-coffee", "name": "Free coffee", "cost": 150}],
    "tiers": TIERS,
}
STARTING_BALANCE = 140
ADMIN, ADMIN_PASSWORD = "admin@zerno.example", "correct horse battery staple"
DESKTOP = {"width": 1280, "height": 900}


def unavailable(message: str) -> NoReturn:
    """Skip on a developer's machine; fail in CI, where the browser must be there."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Live:
    url: str
    token: str
    card_id: int
    number: str
    page_token: str
    engine: Engine
    slug: str = ""

    def purchases(self) -> int:
        with make_sessionmaker(self.engine)() as session:
            return session.scalar(select(func.count()).select_from(Purchase)) or 0

    def balance(self) -> int:
        with make_sessionmaker(self.engine)() as session:
            card = session.get(Card, self.card_id)
            assert card is not None
            return card.points_balance


@pytest.fixture
def live(dev_chain: DevChain, tmp_path: Path) -> Iterator[Live]:
    """A threaded server on loopback over plain http, on a fresh, committed SQLite database."""
    database_url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    # Plain http on loopback: the session cookie must not be Secure-only, or it never comes back.
    app = create_app(app_config(dev_chain, database_url, SESSION_COOKIE_SECURE=False))
    app.instance_path = str(tmp_path)
    with make_sessionmaker(engine)() as session:
        program = make_program(
            session,
            name="Зерно",
            organization_name="Coffee Grain Ltd",
            rules=RULES,
            points_label="Beans",
        )
        card = make_card(session, program, name="Анна Смирнова")
        adjust(session, card, points=STARTING_BALANCE, reason="starting balance", actor="test")
        token = issue_key(
            session, program, role="store", name="till 1", store=program.stores[0]
        ).token
        create_user(
            session, program, email=ADMIN, name="Ольга", role="admin", password=ADMIN_PASSWORD
        )
        session.commit()
        live = Live("", token, card.id, card.number, card.page_token, engine, program.slug)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    live.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield live
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["passes"].engine.dispose()
        engine.dispose()


@pytest.fixture
def browser_ready() -> None:
    """Checked before the server is built: skipped (failed in CI) without the browser."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: install Debian's chromium package")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright package is not installed (pip install playwright)")


@contextmanager
def phone_page(
    extra_args: tuple[str, ...] = (), camera: bool = False, desktop: bool = False
) -> Iterator[Page]:
    """A phone-sized page in headless chromium (desktop-sized if asked); the camera permission
    only when asked for."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args], headless=True
        )
        try:
            context = browser.new_context(
                viewport=DESKTOP if desktop else PHONE,
                device_scale_factor=1 if desktop else SCALE,
                is_mobile=not desktop,
                has_touch=not desktop,
                locale="en-GB",
                permissions=["camera"] if camera else [],
            )
            page = context.new_page()
            page.set_default_timeout(15_000)
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "console",
                lambda message: (
                    problems.append(f"console: {message.text}")
                    if message.type == "error" and "Content Security Policy" in message.text
                    else None
                ),
            )
            yield page
            assert problems == [], problems
            context.close()
        finally:
            browser.close()


def sign_in(page: Page, live: Live) -> None:
    from playwright.sync_api import expect

    page.goto(f"{live.url}/store")  # not signed in: sent to the sign-in form
    expect(page).to_have_url(f"{live.url}/store/login")
    page.get_by_label("API key").fill(live.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live.url}/store")
    expect(page.get_by_role("heading", name="Зерно", exact=True)).to_be_visible()
    expect(page.get_by_text("Store 0")).to_be_visible()


def fake_camera(path: Path, payload: str) -> Path:
    """A Y4M video of the card's QR code, for chromium's fake camera."""
    width, height, side = 640, 480, 400
    code = Image.open(io.BytesIO(qr_png(payload))).convert("L").resize((side, side))
    frame = Image.new("L", (width, height), 230)
    frame.paste(code, ((width - side) // 2, (height - side) // 2))
    chroma = bytes([128]) * (width // 2 * height // 2)
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(10):
            video.write(b"FRAME\n" + frame.tobytes() + chroma + chroma)
    return path


def check_screenshot(path: Path) -> None:
    """A real phone screenshot: 390×844 CSS pixels at 3×, and not a blank page."""
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG"
        assert image.size == (PHONE["width"] * SCALE, PHONE["height"] * SCALE)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50, f"{path.name} is nearly a single colour"


def test_scanner_on_a_phone_without_a_camera(live: Live) -> None:
    with phone_page() as page:
        typing_purchases_and_screenshots(page, live)


def typing_purchases_and_screenshots(page: Page, live: Live) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    sign_in(page, live)

    # Money is parsed as text, never through floating point. (The script is deferred: wait
    # for it, the page may be visible before it ran.)
    page.wait_for_function("() => window.loyalpassScanner !== undefined")
    parsed = page.evaluate(
        """cases => cases.map(c => window.loyalpassScanner.parseMoney(c, 2))""",
        ["123,45", "123.45", "1 234,5", "0.07", "1.15", "7", "12,345", "1.234,56", "-5", "x", ""],
    )
    assert parsed == [12345, 12345, 123450, 7, 115, 700, None, None, None, None, None]

    # No camera is granted: pressing Scan says so, and typing still works.
    page.get_by_role("button", name="Scan a card").click()
    expect(page.locator("#camera-status")).to_contain_text(re.compile("camera", re.IGNORECASE))
    expect(page.get_by_role("button", name="Scan a card")).to_be_enabled()
    page.screenshot(path=ARTIFACTS / "store-find.png")
    check_screenshot(ARTIFACTS / "store-find.png")

    spaced = " ".join(live.number[i : i + 4] for i in range(0, len(live.number), 4))
    page.get_by_label("Card number or scanned text").fill(spaced)
    page.get_by_role("button", name="Look up").click()
    expect(page.locator("#member-name")).to_have_text("Анна Смирнова")
    expect(page.get_by_text("check the customer's card")).to_be_visible()
    expect(page.locator("#card-balance")).to_have_text(str(STARTING_BALANCE))
    expect(page.locator("#card-tier")).to_have_text("Любитель")
    expect(page.locator("#rewards-none")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "store-scanner.png")
    check_screenshot(ARTIFACTS / "store-scanner.png")

    # A purchase typed the way a Russian till types it.
    keys: list[str] = []
    page.on(
        "request",
        lambda request: (
            keys.append(request.headers["idempotency-key"])
            if request.url.endswith("/api/v1/purchases")
            else None
        ),
    )
    page.get_by_label("Purchase amount, RUB").fill("123,45")
    page.get_by_label("Receipt number").fill("A-17")
    page.get_by_role("button", name="Record purchase").click()
    result = page.locator("#purchase-result")
    expect(result).to_contain_text(re.compile(r"Recorded: 123\.45\sRUB"))
    expect(result).to_contain_text(re.compile(r"New balance 152\sbeans"))
    expect(page.locator("#card-balance")).to_have_text("152")
    expect(page.get_by_role("button", name=re.compile("Give Free coffee"))).to_be_visible()
    assert live.purchases() == 1 and live.balance() == STARTING_BALANCE + 12
    result.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "store-purchase.png")
    check_screenshot(ARTIFACTS / "store-purchase.png")
    page.screenshot(path=ARTIFACTS / "store-scanner-full.png", full_page=True)

    # The answer to the next purchase is lost on the way back (the server did record it): the
    # page says it may have been recorded, and pressing again replays it instead of recording
    # it twice.
    lost: list[int] = []

    def lose_first_answer(route: Any) -> None:
        if not lost:
            lost.append(route.fetch().status)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/v1/purchases", lose_first_answer)
    page.get_by_label("Purchase amount, RUB").fill("10")
    page.get_by_role("button", name="Record purchase").click()
    expect(page.locator("#purchase-error")).to_contain_text("may or may not have been recorded")
    assert lost == [201] and live.purchases() == 2
    page.get_by_role("button", name="Record purchase").click()
    expect(result).to_contain_text("Already recorded: 10.00")
    expect(page.locator("#purchase-error")).to_be_empty()
    assert live.purchases() == 2 and live.balance() == STARTING_BALANCE + 12 + 1
    assert len(keys) == 3 and keys[1] == keys[2] and keys[0] != keys[1]
    page.unroute("**/api/v1/purchases")

    # A new submission of the same amount is a new purchase, with a new key.
    page.get_by_label("Purchase amount, RUB").fill("10")
    page.get_by_role("button", name="Record purchase").click()
    expect(result).to_contain_text(re.compile(r"^Recorded: 10\.00"))
    assert live.purchases() == 3 and len(keys) == 4 and keys[3] not in keys[:3]

    # An amount that is not money never reaches the server.
    page.get_by_label("Purchase amount, RUB").fill("12,345")
    page.get_by_role("button", name="Record purchase").click()
    expect(page.locator("#purchase-error")).to_contain_text("e.g. 123,45")
    assert len(keys) == 4

    # The member's own card page shows the new balance.
    page.goto(f"{live.url}/c/{live.page_token}")
    expect(page.locator(".card-balance")).to_have_text(str(STARTING_BALANCE + 14))
    page.screenshot(path=ARTIFACTS / "card-page.png")
    check_screenshot(ARTIFACTS / "card-page.png")


def test_scanning_a_card_with_the_camera(live: Live, tmp_path: Path) -> None:
    """Chromium's fake camera films the card's QR code; the page decodes it (BarcodeDetector
    where the browser has one for QR codes, else the vendored jsQR) and stops the camera."""
    from playwright.sync_api import expect

    with make_sessionmaker(live.engine)() as session:
        card = session.get(Card, live.card_id)
        assert card is not None
        payload = card.barcode_payload
    video = fake_camera(tmp_path / "card.y4m", payload)
    args = ("--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}")
    with phone_page(args, camera=True) as page:
        sign_in(page, live)
        page.get_by_role("button", name="Scan a card").click()
        expect(page.locator("#member-name")).to_have_text("Анна Смирнова", timeout=30_000)
        expect(page.locator("#camera-status")).to_have_text("Card scanned.")
        expect(page.get_by_text("Scanned from the customer's card")).to_be_visible()
        expect(page.get_by_text("check the customer's card")).to_be_hidden()
        expect(page.get_by_label("Card number or scanned text")).to_have_value(payload)
        assert page.evaluate(
            """() => document.getElementById("camera-video").srcObject === null
                && document.getElementById("camera").hidden
                && ("BarcodeDetector" in window || typeof window.jsQR === "function")"""
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "store-scanned.png")
        check_screenshot(ARTIFACTS / "store-scanned.png")

        # Points pay for at most 30 % of a receipt; one point is worth 1.00 RUB.
        page.get_by_label("Receipt amount, RUB").fill("100")
        page.get_by_role("button", name="Pay with beans").click()
        result = page.locator("#points-result")
        expect(result).to_contain_text(re.compile(r"Paid with 30\sbeans = 30\.00\sRUB"))
        expect(result).to_contain_text(re.compile(r"Customer pays 70\.00\sRUB of 100\.00\sRUB"))
        expect(page.locator("#card-balance")).to_have_text(str(STARTING_BALANCE - 30))
        assert live.balance() == STARTING_BALANCE - 30

        # Next customer: the page is ready to scan again.
        page.get_by_role("button", name="Next customer").click()
        expect(page.locator("#card")).to_be_hidden()
        expect(page.get_by_role("button", name="Scan a card")).to_be_focused()


def console_sign_in(page: Page, live: Live) -> None:
    """Sign in to the console as the admin, after one wrong password."""
    from playwright.sync_api import expect

    console = f"{live.url}/console/{live.slug}"
    page.goto(f"{console}/")  # not signed in: sent to the sign-in form
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.get_by_label("E-mail").fill(ADMIN)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()  # the form again, with a message
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{console}/")


def test_console_sign_in_a_scheduled_campaign_and_the_charts(live: Live) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    console = f"{live.url}/console/{live.slug}"
    with phone_page(desktop=True) as page:
        console_sign_in(page, live)
        expect(page.locator("#members")).to_have_text("1")
        page.screenshot(path=ARTIFACTS / "console-home.png", full_page=True)

        page.get_by_role("link", name="Campaigns").click()
        page.goto(f"{console}/campaigns/new")
        page.get_by_label("Title (on the card)").fill("Двойные баллы")
        page.get_by_label("Text").fill("Всю неделю — двойные баллы за кофе")
        page.get_by_label("Valid until").fill("2099-01-31T20:00")
        page.get_by_role("radio", name="Send at").check()
        page.locator("#send_at").fill("2099-01-01T09:00")
        page.get_by_role("button", name="How many members?").click()
        expect(page.locator("#reach")).to_contain_text("1")  # nothing sent yet
        page.get_by_role("button", name="Schedule").click()
        expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
        expect(page.locator("#status")).to_have_text("scheduled")
        page.screenshot(path=ARTIFACTS / "console-campaign.png", full_page=True)

        page.get_by_role("link", name="Analytics").click()
        expect(page).to_have_url(f"{console}/analytics")
        for chart in ("members-chart", "purchases-chart", "wallets-chart", "tiers-chart"):
            expect(page.locator(f"#{chart}")).to_have_attribute("data-drawn", "true")
        painted = page.evaluate(
            """ids => ids.map(id => {
                const canvas = document.getElementById(id);
                const pixels = canvas.getContext("2d")
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                let inked = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
                return [canvas.width > 100 && canvas.height > 100, inked];
            })""",
            ["members-chart", "tiers-chart", "campaigns-chart"],
        )
        assert all(sized and inked > 500 for sized, inked in painted), painted
        page.screenshot(path=ARTIFACTS / "console-analytics.png", full_page=True)
    with Image.open(ARTIFACTS / "console-analytics.png") as image:
        assert image.width == DESKTOP["width"]
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1000)) > 50


def test_the_card_designer_previews_an_upload_and_saves_it(live: Live, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    strip = tmp_path / "strip.png"
    Image.new("RGB", (750, 246), (200, 10, 10)).save(strip)
    pixel_of = """([id, x, y]) => {
        const image = document.getElementById(id);
        const canvas = document.createElement("canvas");
        canvas.width = image.naturalWidth;
        canvas.height = image.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(image, 0, 0);
        return Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3));
    }"""
    with phone_page(desktop=True) as page:
        console_sign_in(page, live)
        page.get_by_role("link", name="Card design").click()
        expect(page.get_by_role("heading", name="Card design")).to_be_visible()
        expect(page.locator("#design-form")).to_have_attribute("data-live", "true")
        expect(page.locator("#preview-apple")).to_have_js_property("complete", True)
        before = page.evaluate(pixel_of, ["preview-apple", 600, 130])
        assert before != [200, 10, 10]

        page.get_by_label("Strip").set_input_files(strip)
        page.locator("#color_background").fill("#0a7d32")
        expect(page.locator("#preview-apple")).to_have_attribute("data-version", re.compile("."))
        expect(page.locator("#preview-google")).to_have_attribute("data-version", re.compile("."))
        page.wait_for_function(
            "() => document.getElementById('preview-status').textContent.includes('not saved')"
        )
        assert page.evaluate(pixel_of, ["preview-apple", 600, 130]) == [200, 10, 10]
        assert page.evaluate(pixel_of, ["preview-apple", 320, 6]) == [10, 125, 50]
        assert page.evaluate(pixel_of, ["preview-google", 320, 820]) == [200, 10, 10]
        page.screenshot(path=ARTIFACTS / "console-designer.png", full_page=True)

        page.get_by_label("Program name (on the card)").fill("")
        expect(page.locator("#preview-errors")).to_contain_text("name")  # a draft with a problem
        page.get_by_label("Program name (on the card)").fill("Зерно")
        page.get_by_role("button", name="Save and update every card").click()
        expect(page.locator("#saved")).to_be_visible()
        expect(page.get_by_text("Strip (one is set)")).to_be_visible()
    with make_sessionmaker(live.engine)() as session:
        card = session.get(Card, live.card_id)
        assert card is not None and card.program.background_color == "#0a7d32"
        assert card.program.strip_image is not None
