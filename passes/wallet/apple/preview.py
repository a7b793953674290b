"""A picture of the front of a member's Apple Wallet card, drawn from the very ``pass.json`` and
images the pass is built from: the designer's live preview.

Wallet draws the real card; this follows its ``storeCard`` layout (logo and logo text with the
header field, the strip with the primary field over it, secondary and auxiliary fields, the
barcode) closely enough to judge colours, images, labels and lengths.
"""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageDraw

from passes.wallet.apple.images import TEXT_LOCK, render_pass_images
from passes.wallet.apple.pass_json import PassIdentity, pass_dict
from passes.wallet.drawing import colour, encode, fit_within, png, qr_box, rounded_card, text
from passes.wallet.view import CardView

SCALE = 2  # drawn at @2x, like the images Wallet uses on most iPhones
WIDTH, HEIGHT = 320, 420  # points
_IDENTITY = PassIdentity("pass.preview.loyalpass", "PREVIEW000", None)


def apple_card_preview(view: CardView) -> bytes:
    """PNG of the card's front, ``WIDTH``×``HEIGHT`` points at @2x."""
    document = pass_dict(view, _IDENTITY)
    brand = view.branding
    images = render_pass_images(
        title=brand.program_name,
        background=brand.background_color,
        foreground=brand.foreground_color,
        logo=brand.logo_image,
        icon=brand.icon_image,
        strip=brand.strip_image,
    )
    with TEXT_LOCK:  # FreeType faces are shared and not thread-safe
        return encode(_draw(document, images))


def _draw(document: dict[str, Any], images: dict[str, bytes]) -> Image.Image:
    s = SCALE
    width = WIDTH * s
    background = colour(document["backgroundColor"])
    foreground = colour(document["foregroundColor"])
    label = colour(document["labelColor"])
    fields = document["storeCard"]
    card = rounded_card((width, HEIGHT * s), background, 12 * s)
    draw = ImageDraw.Draw(card)

    # Top row: logo, logo text, header field on the right.
    logo = fit_within(png(images["logo@2x.png"]), (100 * s, 30 * s))
    card.alpha_composite(logo, (12 * s, 12 * s + (30 * s - logo.height) // 2))
    header = fields["headerFields"][0]
    header_width = 90 * s
    text(draw, (width - 12 * s, 12 * s), header["label"].upper(), 9 * s, label, header_width, "ra")
    text(
        draw, (width - 12 * s, 24 * s), str(header["value"]), 15 * s, foreground, header_width, "ra"
    )
    logo_text_x = 12 * s + logo.width + 8 * s
    text(
        draw,
        (logo_text_x, 27 * s),
        document.get("logoText", ""),
        15 * s,
        foreground,
        width - logo_text_x - header_width - 20 * s,
        "lm",
    )

    # The strip, with the primary field over it.
    strip_top = 54 * s
    strip = png(images["strip@2x.png"]).resize((width, round(width * 123 / 375)))
    card.alpha_composite(strip, (0, strip_top))
    primary = fields["primaryFields"][0]
    strip_bottom = strip_top + strip.height
    text(
        draw,
        (12 * s, strip_bottom - 14 * s),
        primary["label"].upper(),
        10 * s,
        label,
        width - 24 * s,
        "ls",
    )
    text(
        draw,
        (12 * s, strip_bottom - 28 * s),
        str(primary["value"]),
        34 * s,
        foreground,
        width - 24 * s,
        "ls",
    )

    # Secondary and auxiliary fields in one row.
    row = (fields.get("secondaryFields") or []) + (fields.get("auxiliaryFields") or [])
    row = row[:4]
    if row:
        column = (width - 24 * s) // len(row)
        for index, field in enumerate(row):
            x = 12 * s + index * column
            y = strip_bottom + 12 * s
            text(draw, (x, y), str(field["label"]).upper(), 9 * s, label, column - 6 * s)
            text(draw, (x, y + 13 * s), str(field["value"]), 13 * s, foreground, column - 6 * s)

    # The barcode, in its white box.
    barcode = document["barcodes"][0]
    box = qr_box(barcode["message"], 140 * s, barcode.get("altText", ""), s)
    card.alpha_composite(box, ((width - box.width) // 2, HEIGHT * s - box.height - 14 * s))
    return card
