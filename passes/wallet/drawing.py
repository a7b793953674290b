"""Small pillow helpers for the design previews of both wallets: the vendored font, text that
fits its space, rounded cards, the QR box."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from passes.qr import qr_png

FONT_PATH = Path(__file__).resolve().parent.parent / "assets" / "DejaVuSans-Bold.ttf"
RGB = tuple[int, int, int]


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size, layout_engine=ImageFont.Layout.BASIC)


def colour(value: str) -> RGB:
    """``#rrggbb`` or pass.json's ``rgb(r, g, b)`` as a tuple."""
    value = value.strip()
    if value.startswith("rgb("):
        red, green, blue = (int(part) for part in value[4:-1].split(","))
        return red, green, blue
    value = value.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def is_dark(value: RGB) -> bool:
    red, green, blue = value
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue < 140


def fitted(text: str, size: int, width: int) -> str:
    """``text``, cut with an ellipsis so that it fits ``width`` pixels at ``size``."""
    face = font(size)
    if face.getlength(text) <= width:
        return text
    while text and face.getlength(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def text(
    draw: ImageDraw.ImageDraw,
    position: tuple[int, int],
    value: str,
    size: int,
    fill: RGB,
    width: int,
    anchor: str = "la",
) -> None:
    draw.text(position, fitted(value, size, width), font=font(size), fill=fill, anchor=anchor)


def rounded_card(size: tuple[int, int], background: RGB, radius: int) -> Image.Image:
    card = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(card).rounded_rectangle(
        (0, 0, size[0] - 1, size[1] - 1), radius=radius, fill=(*background, 255)
    )
    return card


def fit_within(image: Image.Image, box: tuple[int, int]) -> Image.Image:
    scale = min(box[0] / image.width, box[1] / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def png(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGBA")


def qr_box(payload: str, side: int, caption: str, scale: int) -> Image.Image:
    """The white box with the QR code and the number under it, as both wallets show it."""
    caption_height = 16 * scale
    box = rounded_card((side, side + caption_height), (255, 255, 255), 8 * scale)
    code = png(qr_png(payload, scale=4)).resize(
        (side - 16 * scale, side - 16 * scale), Image.Resampling.NEAREST
    )
    box.alpha_composite(code, (8 * scale, 8 * scale))
    text(
        ImageDraw.Draw(box),
        (side // 2, side + caption_height // 2 - 2 * scale),
        caption,
        9 * scale,
        (30, 30, 30),
        side - 8 * scale,
        anchor="mm",
    )
    return box


def encode(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
