"""QR images for the card page: decoded back with a real reader, not just inspected."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
import zxingcpp  # test-only dependency: PyPI "zxing-cpp"
from PIL import Image

from passes.qr import QRError, qr_png, qr_svg

PAYLOAD = "7701234567893.AbC-_9xYz"
SVG_NS = "{http://www.w3.org/2000/svg}"


def _decode(png: bytes) -> list[str]:
    """Every QR text a real decoder finds in the PNG."""
    image = Image.open(io.BytesIO(png))
    results = zxingcpp.read_barcodes(image.convert("L"))
    return [r.text for r in results if r.format == zxingcpp.BarcodeFormat.QRCode]


def test_png_decodes_back_to_payload() -> None:
    assert _decode(qr_png(PAYLOAD)) == [PAYLOAD]


@pytest.mark.parametrize("payload", ["1", "https://example.test/c/AbC?x=1&y=2", "Кофе 10%"])
def test_png_round_trips_other_payloads(payload: str) -> None:
    assert _decode(qr_png(payload)) == [payload]


def test_png_size_follows_scale_and_border() -> None:
    small = Image.open(io.BytesIO(qr_png(PAYLOAD, scale=2, border=4)))
    large = Image.open(io.BytesIO(qr_png(PAYLOAD, scale=10, border=4)))
    assert small.format == "PNG"
    assert large.size[0] == large.size[1] == small.size[0] * 5
    modules = small.size[0] // 2 - 8
    assert modules >= 21 and (modules - 21) % 4 == 0  # a real QR version
    assert _decode(qr_png(PAYLOAD, scale=3, border=4)) == [PAYLOAD]


def test_png_is_deterministic() -> None:
    assert qr_png(PAYLOAD) == qr_png(PAYLOAD)


def test_png_quiet_zone_is_white() -> None:
    image = Image.open(io.BytesIO(qr_png(PAYLOAD, scale=10, border=4))).convert("L")
    border_px = 40
    assert image.crop((0, 0, image.width, border_px)).getextrema() == (255, 255)
    assert image.crop((0, 0, border_px, image.height)).getextrema() == (255, 255)


def test_svg_is_valid_xml_with_viewbox_background_and_one_path() -> None:
    svg = qr_svg(PAYLOAD)
    root = ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input
    assert root.tag == f"{SVG_NS}svg"
    view_box = root.get("viewBox")
    assert view_box is not None
    x, y, w, h = (float(v) for v in view_box.split())
    assert (x, y) == (0, 0) and w == h and w >= 29
    assert root.get("width") and root.get("height")
    assert root.get("width") == root.get("height")
    paths = root.findall(f"{SVG_NS}path")
    assert len(paths) == 1
    assert paths[0].get("d")
    rects = root.findall(f"{SVG_NS}rect")
    assert rects and rects[0].get("fill") in {"white", "#ffffff", "#fff"}
    # the background comes before (under) the modules
    children = list(root)
    assert children.index(rects[0]) < children.index(paths[0])


def test_svg_matches_png_symbol_size() -> None:
    root = ET.fromstring(qr_svg(PAYLOAD))  # noqa: S314 - our own output
    view_box = root.get("viewBox")
    assert view_box is not None
    side = float(view_box.split()[2])
    png = Image.open(io.BytesIO(qr_png(PAYLOAD, scale=1, border=4)))
    assert side == png.size[0]


@pytest.mark.parametrize("payload", ["", "x" * 5000], ids=["empty", "too-long"])
def test_unusable_payloads_raise(payload: str) -> None:
    with pytest.raises(QRError):
        qr_png(payload)
    with pytest.raises(QRError):
        qr_svg(payload)


def test_bad_geometry_raises() -> None:
    with pytest.raises(ValueError):
        qr_png(PAYLOAD, scale=0)
    with pytest.raises(ValueError):
        qr_png(PAYLOAD, border=-1)
