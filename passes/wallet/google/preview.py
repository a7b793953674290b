"""A picture of a member's Google Wallet loyalty card, drawn from the very class and object
bodies we send Google and the images we serve it: the designer's live preview.

Google draws the real card; this follows its loyalty layout (round logo and issuer, program
name, points and the secondary points, the barcode, the hero image at the bottom) closely
enough to judge colours, images and text.
"""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageDraw

from passes.wallet.apple.images import TEXT_LOCK, render_google_images
from passes.wallet.drawing import colour, encode, is_dark, png, qr_box, rounded_card, text
from passes.wallet.google.objects import ImageUrls, loyalty_class, loyalty_object
from passes.wallet.view import CardView

SCALE = 2
WIDTH, HEIGHT = 320, 430  # points
_ISSUER = "3388000000000000000"  # any: the preview shows no ids


def google_card_preview(view: CardView) -> bytes:
    """PNG of the card, ``WIDTH``×``HEIGHT`` points at @2x."""
    brand = view.branding
    urls = ImageUrls(
        logo="https://preview.invalid/logo.png", hero="https://preview.invalid/hero.png"
    )
    body_class = loyalty_class(brand, issuer_id=_ISSUER, images=urls)
    body_object = loyalty_object(view, issuer_id=_ISSUER)
    images = render_google_images(
        title=brand.program_name,
        background=brand.background_color,
        foreground=brand.foreground_color,
        icon=brand.icon_image,
        strip=brand.strip_image,
    )
    with TEXT_LOCK:  # FreeType faces are shared and not thread-safe
        return encode(_draw(body_class, body_object, images))


def _draw(loyalty: dict[str, Any], member: dict[str, Any], images: dict[str, bytes]) -> Image.Image:
    s = SCALE
    width = WIDTH * s
    background = colour(loyalty["hexBackgroundColor"])
    ink = (255, 255, 255) if is_dark(background) else (32, 33, 36)
    soft = (220, 220, 220) if is_dark(background) else (95, 99, 104)
    card = rounded_card((width, HEIGHT * s), background, 16 * s)
    draw = ImageDraw.Draw(card)

    # Round logo and issuer name, then the program name.
    side = 36 * s
    logo = png(images["logo"]).resize((side, side))
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, side - 1, side - 1), fill=255)
    card.paste(logo, (16 * s, 16 * s), mask)
    text(draw, (60 * s, 34 * s), loyalty["issuerName"], 12 * s, ink, width - 76 * s, "lm")
    text(draw, (16 * s, 72 * s), loyalty["programName"], 20 * s, ink, width - 32 * s, "lm")

    # Points, and the secondary points (the tier) beside them.
    points = member["loyaltyPoints"]
    columns = [(points["label"], str(points["balance"].get("int", points["balance"])))]
    secondary = member.get("secondaryLoyaltyPoints")
    if secondary:
        columns.append((secondary["label"], str(secondary["balance"].get("string", ""))))
    column = (width - 32 * s) // len(columns)
    for index, (title, value) in enumerate(columns):
        x = 16 * s + index * column
        text(draw, (x, 100 * s), title, 10 * s, soft, column - 8 * s)
        text(draw, (x, 114 * s), value, 16 * s, ink, column - 8 * s)

    # The barcode, then the hero image along the bottom.
    barcode = member["barcode"]
    box = qr_box(barcode["value"], 140 * s, barcode.get("alternateText", ""), s)
    card.alpha_composite(box, ((width - box.width) // 2, 148 * s))
    hero = png(images["hero"]).resize((width, round(width * 336 / 1032)))
    corner = rounded_card(hero.size, (0, 0, 0), 16 * s)
    bottom = Image.new("RGBA", hero.size, (0, 0, 0, 0))
    bottom.paste(hero, (0, 0), corner.getchannel("A"))
    card.alpha_composite(bottom, (0, HEIGHT * s - hero.height))
    return card
