"""The PNG images inside an Apple Wallet storeCard pass.

Wallet wants each image at @1x, @2x and @3x. Shops may upload their own icon, logo and
strip; whatever they do not upload is drawn here from the shop's name and colours, so every
pass looks finished. Every output is re-encoded by pillow (nothing from an upload survives
but its pixels) and is byte-for-byte deterministic, because callers cache the pass by the
hashes of these files.
"""

from __future__ import annotations

import io
import re
import threading
import unicodedata
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Final

from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageFilter, ImageFont, ImageOps

from passes.text import N_, Text

__all__ = [
    "ICON_SIZES",
    "IMAGE_NAMES",
    "LOGO_BOXES",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_PIXELS",
    "MAX_UPLOAD_SIDE",
    "STRIP_SIZES",
    "ImageError",
    "reencode_upload",
    "render_google_images",
    "render_pass_images",
    "rgb_string",
    "validate_colour",
]

RGB = tuple[int, int, int]

#: Scale factor -> pixel size, as Apple's pass design guide gives them for a storeCard.
ICON_SIZES: Final[dict[int, int]] = {1: 29, 2: 58, 3: 87}
LOGO_BOXES: Final[dict[int, tuple[int, int]]] = {1: (160, 50), 2: (320, 100), 3: (480, 150)}
STRIP_SIZES: Final[dict[int, tuple[int, int]]] = {1: (375, 123), 2: (750, 246), 3: (1125, 369)}

#: Google Wallet: programLogo is shown in a circle (660 px recommended), heroImage is 1032x336.
GOOGLE_LOGO_SIDE: Final = 660
GOOGLE_HERO_SIZE: Final = (1032, 336)

#: Uploads beyond these are refused before pillow decodes any pixels (decompression bombs).
MAX_UPLOAD_BYTES: Final = 15 * 1024 * 1024
MAX_UPLOAD_PIXELS: Final = 40_000_000
MAX_UPLOAD_SIDE: Final = 16_384

#: Formats a browser upload realistically is; pillow's rarer decoders are not exposed.
#: MPO is what pillow calls many iPhone/Android camera JPEGs.
_UPLOAD_FORMATS: Final = ("PNG", "JPEG", "MPO", "GIF", "WEBP", "BMP")

_SUFFIXES: Final[dict[int, str]] = {1: "", 2: "@2x", 3: "@3x"}
IMAGE_NAMES: Final[tuple[str, ...]] = tuple(
    f"{kind}{_SUFFIXES[scale]}.png" for kind in ("icon", "logo", "strip") for scale in (1, 2, 3)
)

_LANCZOS: Final = Image.Resampling.LANCZOS
#: Generated art is drawn this many times larger than @3x, then downscaled: ImageDraw does
#: not anti-alias shapes, so supersampling is what gives the circles smooth edges.
_SUPERSAMPLE: Final = 4

_FONT_PATH: Final = Path(__file__).resolve().parents[2] / "assets" / "DejaVuSans-Bold.ttf"
_COLOUR_RE: Final = re.compile(r"#[0-9a-fA-F]{6}")
#: FreeType faces are not safe to use from two threads at once, and the fonts are shared.
_TEXT_LOCK: Final = threading.Lock()
TEXT_LOCK: Final = _TEXT_LOCK  # for other drawing with the vendored font (the previews)


class ImageError(ValueError):
    """An uploaded image cannot be used; ``text`` names which one and why (``str()``: the same
    in English)."""

    def __init__(self, text: Text | str) -> None:
        self.text = text if isinstance(text, Text) else Text(text)
        super().__init__(str(self.text))


#: The uploads' names, as the forms label their fields (a page shows "the file in the field
#: «Logo» …"); an upload of another name is named as it is.
_UPLOAD_FIELDS: Final[dict[str, str]] = {
    "logo": N_("logo"),
    "icon": N_("icon"),
    "strip": N_("strip"),
    "offer": N_("offer"),
}


def _refused(message: str, name: str, **values: object) -> ImageError:
    """An ImageError saying ``message`` (marked with N_) about the upload ``name``."""
    field = _UPLOAD_FIELDS.get(name)
    return ImageError(Text(message, {"name": Text(field) if field else name, **values}))


# --------------------------------------------------------------------------- colours


def validate_colour(value: str) -> str:
    """Return ``value`` as lowercase ``#rrggbb``; raise ValueError for anything else.

    Only the six-digit form is accepted so that what we store is exactly what pass.json
    and CSS get, with no guessing about names or shorthand.
    """
    if not isinstance(value, str):
        raise ValueError(f"colour must be a string like #1a2b3c, not {type(value).__name__}")
    candidate = value.strip()
    if not _COLOUR_RE.fullmatch(candidate):
        raise ValueError(f"colour must look like #1a2b3c, got {value!r}")
    return candidate.lower()


def _rgb(value: str) -> RGB:
    """Parse a colour into an (r, g, b) tuple, validating it first."""
    hex_digits = validate_colour(value)[1:]
    return (int(hex_digits[0:2], 16), int(hex_digits[2:4], 16), int(hex_digits[4:6], 16))


def rgb_string(value: str) -> str:
    """Return ``"rgb(r, g, b)"``: the only colour syntax pass.json accepts."""
    r, g, b = _rgb(value)
    return f"rgb({r}, {g}, {b})"


def _mix(colour: RGB, other: RGB, amount: float) -> RGB:
    """Blend ``amount`` (0..1) of ``other`` into ``colour``."""
    r, g, b = (round(c + (o - c) * amount) for c, o in zip(colour, other, strict=True))
    return (r, g, b)


def _is_dark(colour: RGB) -> bool:
    """Rough perceived lightness test, to decide whether shades go lighter or darker."""
    r, g, b = colour
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) < 140


# --------------------------------------------------------------------------- text


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    """Load the vendored font; BASIC layout so output does not depend on libraqm."""
    return ImageFont.truetype(str(_FONT_PATH), size, layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=256)
def _has_glyph(char: str) -> bool:
    """True if the vendored font really draws ``char`` rather than its .notdef box."""
    return _glyph_pixels(char) != _glyph_pixels("\uffff")  # U+FFFF is never in a font


def _glyph_pixels(char: str) -> bytes:
    """Rendered pixels of one character, for comparing against the .notdef glyph."""
    canvas = Image.new("L", (96, 96), 0)
    with _TEXT_LOCK:
        ImageDraw.Draw(canvas).text((16, 8), char, fill=255, font=_font(64))
    return canvas.tobytes()


def _initials(title: str) -> str:
    """One or two upper-case initials of the shop name, e.g. "Кофейня Зерно" -> "КЗ".

    The first letter or digit of the first two words that the font can draw; an empty
    string if there is none (the caller then draws a plain mark instead).
    """
    letters: list[str] = []
    for word in unicodedata.normalize("NFC", title).split():
        for char in word:
            if char.isalnum():
                upper = char.upper()
                char = upper if len(upper) == 1 else char
                if _has_glyph(char):
                    letters.append(char)
                break
        if len(letters) == 2:
            break
    return "".join(letters)


def _draw_centred_text(mask: Image.Image, text: str, *, max_width: float, size: int) -> None:
    """Draw ``text`` in white on an "L" mask, visually centred on its ink, shrunk to fit."""
    draw = ImageDraw.Draw(mask)
    with _TEXT_LOCK:
        font = _font(size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left > max_width:
            font = _font(max(1, int(size * max_width / (right - left))))
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        width, height = mask.size
        x = (width - (right - left)) / 2 - left
        y = (height - (bottom - top)) / 2 - top
        draw.text((x, y), text, fill=255, font=font)


def _monogram_mask(side: int, text: str, *, scale: float = 1.0) -> Image.Image:
    """An "L" mask of the initials sized for a square of ``side`` pixels.

    ``scale`` enlarges the letters where the whole square is usable (the icon) rather than
    only the circle inscribed in it (the logo).
    """
    mask = Image.new("L", (side, side), 0)
    if text:
        ratio = (0.50 if len(text) == 1 else 0.40) * scale
        max_width = min(0.70 * scale, 0.80) * side
        _draw_centred_text(mask, text, max_width=max_width, size=round(side * ratio))
    else:
        # No drawable initial (e.g. an emoji-only or CJK name): a small dot instead.
        draw = ImageDraw.Draw(mask)
        r = side * 0.12
        c = side / 2
        draw.ellipse((c - r, c - r, c + r, c + r), fill=255)
    return mask


# --------------------------------------------------------------------------- uploads


def _decode_upload(data: bytes, name: str) -> Image.Image:
    """Decode an upload to upright RGBA pixels in sRGB, or raise ImageError naming it."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _refused(N_("%(name)s image must be bytes"), name)
    if len(data) == 0:
        raise _refused(N_("%(name)s image is empty"), name)
    if len(data) > MAX_UPLOAD_BYTES:
        raise _refused(
            N_("%(name)s image is too large (%(size)s bytes; at most %(most)s)"),
            name,
            size=len(data),
            most=MAX_UPLOAD_BYTES,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=_UPLOAD_FORMATS)
            width, height = opened.size
            if not (0 < width <= MAX_UPLOAD_SIDE and 0 < height <= MAX_UPLOAD_SIDE) or (
                width * height > MAX_UPLOAD_PIXELS
            ):
                raise _refused(
                    N_(
                        "%(name)s image is %(width)sx%(height)s pixels; at most %(side)s "
                        "pixels a side and %(pixels)s pixels in all are accepted"
                    ),
                    name,
                    width=width,
                    height=height,
                    side=MAX_UPLOAD_SIDE,
                    pixels=MAX_UPLOAD_PIXELS,
                )
            opened.load()
            icc = opened.info.get("icc_profile")
            image = _upright(opened).convert("RGBA")
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _refused(N_("%(name)s image has too many pixels"), name) from exc
    except Exception as exc:  # pillow raises many types for hostile or truncated files
        raise _refused(
            N_("%(name)s image could not be read; upload a PNG, JPEG, GIF or WebP file"), name
        ) from exc
    return _to_srgb(image, icc)


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, as phones store photos sideways plus a rotation tag.

    A malformed EXIF block is not worth rejecting a photo over: it is then used as stored.
    """
    try:
        return ImageOps.exif_transpose(image) or image
    except Exception:  # corrupt EXIF surfaces as many exception types
        return image


def _to_srgb(image: Image.Image, icc: object) -> Image.Image:
    """Convert from an embedded RGB ICC profile (e.g. iPhone Display P3) to sRGB.

    The profile itself is dropped on re-encoding, so without this the colours of wide-gamut
    photos would shift. Anything unusual about the profile just skips the conversion.
    """
    if not isinstance(icc, bytes) or not icc:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if source.profile.xcolor_space.strip() != "RGB":
            return image
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode="RGBA"
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image
    return converted if converted is not None else image


def _trim_transparent(image: Image.Image) -> Image.Image:
    """Crop away fully transparent margins, which Wallet would otherwise count as logo."""
    bbox = image.getchannel("A").getbbox()
    return image.crop(bbox) if bbox else image


def _flatten(image: Image.Image, background: RGB) -> Image.Image:
    """Put an RGBA image on an opaque background colour."""
    canvas = Image.new("RGBA", image.size, (*background, 255))
    canvas.alpha_composite(image)
    return canvas


def _logo_size(width: int, height: int, scale: int) -> tuple[int, int]:
    """Size at ``scale`` of an image contained in the logo box, aspect ratio kept.

    The @1x size is computed first and multiplied, so @2x/@3x are exact multiples of @1x.
    """
    box_w, box_h = LOGO_BOXES[1]
    factor = min(box_w / width, box_h / height)
    w1 = min(box_w, max(1, round(width * factor)))
    h1 = min(box_h, max(1, round(height * factor)))
    return (w1 * scale, h1 * scale)


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Centre-crop to the aspect ratio of ``size``, then resize to exactly ``size``.

    Cropping first (rather than ImageOps.fit's resize-with-box) keeps pixels outside the
    crop from bleeding into the edges through the LANCZOS kernel.
    """
    width, height = image.size
    target_w, target_h = size
    factor = max(target_w / width, target_h / height)
    crop_w = min(width, max(1, round(target_w / factor)))
    crop_h = min(height, max(1, round(target_h / factor)))
    left = (width - crop_w) // 2
    top = (height - crop_h) // 2
    return image.crop((left, top, left + crop_w, top + crop_h)).resize(size, _LANCZOS)


def _uploaded_icon(image: Image.Image, background: RGB) -> dict[int, Image.Image]:
    """Centre-crop to a square and resize; flattened so it reads on any system surface."""
    flat = _flatten(image, background)
    return {s: _cover(flat, (px, px)) for s, px in ICON_SIZES.items()}


def _uploaded_logo(image: Image.Image) -> dict[int, Image.Image]:
    """Contain within the logo box on transparency; never larger than the box."""
    trimmed = _trim_transparent(image)
    out: dict[int, Image.Image] = {}
    for scale in LOGO_BOXES:
        out[scale] = trimmed.resize(_logo_size(*trimmed.size, scale), _LANCZOS)
    return out


def _uploaded_strip(image: Image.Image) -> dict[int, Image.Image]:
    """Cover-crop (centred) to exactly the strip size."""
    return {s: _cover(image, size) for s, size in STRIP_SIZES.items()}


# --------------------------------------------------------------------------- generated


def _downscaled(master: Image.Image, sizes: dict[int, tuple[int, int]]) -> dict[int, Image.Image]:
    """Each scale resized straight from the big master, for the sharpest result."""
    return {s: master.resize(size, _LANCZOS) for s, size in sizes.items()}


def _generated_icon(initials: str, background: RGB, foreground: RGB) -> dict[int, Image.Image]:
    """Solid background square with the initials in the foreground colour."""
    side = ICON_SIZES[3] * _SUPERSAMPLE
    master = Image.new("RGBA", (side, side), (*background, 255))
    ink = Image.new("RGBA", (side, side), (*foreground, 255))
    master.paste(ink, (0, 0), _monogram_mask(side, initials, scale=1.12))
    return _downscaled(master, {s: (px, px) for s, px in ICON_SIZES.items()})


def _generated_logo(initials: str, foreground: RGB) -> dict[int, Image.Image]:
    """A foreground-coloured disc with the initials cut out, on transparency.

    Cut out rather than painted, so the letters show the pass background whatever it is;
    the shop name itself is the pass's logoText, so it is not repeated here.
    """
    side = LOGO_BOXES[3][1] * _SUPERSAMPLE
    disc = Image.new("L", (side, side), 0)
    inset = side * 0.02  # keeps the anti-aliased edge inside the image
    ImageDraw.Draw(disc).ellipse((inset, inset, side - inset, side - inset), fill=255)
    alpha = ImageChops.subtract(disc, _monogram_mask(side, initials))
    master = Image.new("RGBA", (side, side), (*foreground, 0))
    master.putalpha(alpha)
    height = LOGO_BOXES[1][1]
    return _downscaled(master, {s: (height * s, height * s) for s in LOGO_BOXES})


def _diagonal_gradient(size: tuple[int, int]) -> Image.Image:
    """An "L" mask going 0 at the top-left corner to 255 at the bottom-right."""
    base = Image.linear_gradient("L")
    horizontal = base.transpose(Image.Transpose.ROTATE_90).resize(size, Image.Resampling.BICUBIC)
    vertical = base.resize(size, Image.Resampling.BICUBIC)
    return ImageChops.add(horizontal, vertical, scale=2.0)


#: Soft circles of the generated strip, in @1x points: (centre x, centre y, radius, opacity).
#: They sit to the right, leaving the left calm where Wallet draws the balance; where they
#: overlap they add up, like tinted glass.
_STRIP_CIRCLES: Final = (
    (338.0, 4.0, 78.0, 0.20),
    (266.0, 120.0, 48.0, 0.14),
    (396.0, 108.0, 60.0, 0.18),
    (206.0, 26.0, 16.0, 0.12),
)


def _generated_strip(background: RGB) -> dict[int, Image.Image]:
    """A quiet diagonal gradient with a few soft circles, all in shades of the background.

    No text: Wallet draws the balance over the strip.
    """
    width, height = STRIP_SIZES[3]
    dark = _is_dark(background)
    toward = (255, 255, 255) if dark else (0, 0, 0)
    shade = _mix(background, toward, 0.14 if dark else 0.10)
    circle_colour = _mix(background, toward, 0.85 if dark else 0.60)

    base = Image.new("RGBA", (width, height), (*background, 255))
    gradient_end = Image.new("RGBA", (width, height), (*shade, 255))
    master = Image.composite(gradient_end, base, _diagonal_gradient((width, height)))

    # Circles are drawn supersampled, brought to @3x size, then their edges softened.
    ss = 2
    circles = Image.new("L", (width * ss, height * ss), 0)
    unit = ss * width / STRIP_SIZES[1][0]
    for cx, cy, radius, opacity in _STRIP_CIRCLES:
        layer = Image.new("L", circles.size, 0)
        box = (
            (cx - radius) * unit,
            (cy - radius) * unit,
            (cx + radius) * unit,
            (cy + radius) * unit,
        )
        ImageDraw.Draw(layer).ellipse(box, fill=round(255 * opacity))
        circles = ImageChops.add(circles, layer)
    circles = circles.resize((width, height), _LANCZOS).filter(ImageFilter.GaussianBlur(4))
    master.paste(Image.new("RGBA", (width, height), (*circle_colour, 255)), (0, 0), circles)
    return _downscaled(master, STRIP_SIZES)


# --------------------------------------------------------------------------- output


def _encode_png(image: Image.Image) -> bytes:
    """PNG bytes of just the pixels: a fresh image carries no info, ICC, EXIF or text.

    Fully opaque images are stored as RGB, which is smaller and what Wallet expects for
    the icon.
    """
    rgba = image.convert("RGBA")
    mode = "RGB" if rgba.getchannel("A").getextrema() == (255, 255) else "RGBA"
    pixels = rgba.convert(mode) if mode == "RGB" else rgba
    clean = Image.frombytes(mode, pixels.size, pixels.tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def render_pass_images(
    *,
    title: str,
    background: str,
    foreground: str,
    logo: bytes | None = None,
    icon: bytes | None = None,
    strip: bytes | None = None,
) -> dict[str, bytes]:
    """Return PNG bytes for every image name in :data:`IMAGE_NAMES`.

    ``background``/``foreground`` are ``#rrggbb`` (ValueError otherwise). Uploaded images are
    fitted (icon: centre-crop square; logo: contained in 160x50 pt; strip: cover-crop to
    375x123 pt); missing ones are generated from ``title`` and the colours. Raises
    :class:`ImageError` naming the image if an upload is unreadable or too large.
    """
    bg = _rgb(background)
    fg = _rgb(foreground)
    initials = _initials(title)

    icons = (
        _uploaded_icon(_decode_upload(icon, "icon"), bg)
        if icon is not None
        else _generated_icon(initials, bg, fg)
    )
    logos = (
        _uploaded_logo(_decode_upload(logo, "logo"))
        if logo is not None
        else _generated_logo(initials, fg)
    )
    strips = (
        _uploaded_strip(_decode_upload(strip, "strip"))
        if strip is not None
        else _generated_strip(bg)
    )

    result: dict[str, bytes] = {}
    for kind, images in (("icon", icons), ("logo", logos), ("strip", strips)):
        for scale in (1, 2, 3):
            result[f"{kind}{_SUFFIXES[scale]}.png"] = _encode_png(images[scale])
    return result


def render_google_images(
    *,
    title: str,
    background: str,
    foreground: str,
    icon: bytes | None = None,
    strip: bytes | None = None,
) -> dict[str, bytes]:
    """PNG bytes of Google Wallet's ``logo`` (square; Google crops it to a circle) and ``hero``
    (the banner), from the same uploads and colours as the Apple pass, so both cards match.

    The square logo comes from the icon (Google's logo sits where Apple's icon would: a
    square mark, not a wide wordmark); the hero from the strip.
    """
    bg = _rgb(background)
    fg = _rgb(foreground)
    side = GOOGLE_LOGO_SIDE
    if icon is not None:
        logo = _cover(_flatten(_decode_upload(icon, "icon"), bg), (side, side))
    else:
        big = side * 2
        logo = Image.new("RGBA", (big, big), (*bg, 255))
        ink = Image.new("RGBA", (big, big), (*fg, 255))
        logo.paste(ink, (0, 0), _monogram_mask(big, _initials(title), scale=0.9))
        logo = logo.resize((side, side), _LANCZOS)
    source = _decode_upload(strip, "strip") if strip is not None else _generated_strip(bg)[3]
    hero = _cover(source, GOOGLE_HERO_SIZE)
    return {"logo": _encode_png(logo), "hero": _encode_png(hero)}


#: Uploads are kept at most this many pixels a side: more than any wallet image needs.
STORED_SIDE: Final = 2048


def reencode_upload(data: bytes, name: str) -> bytes:
    """An uploaded image as the PNG we store: decoded by pillow (type and size checked, as for
    passes), upright, in sRGB, scaled down to STORED_SIDE; nothing of the uploaded file (its
    metadata, other frames, trailing bytes) survives. ImageError names what is wrong."""
    image = _decode_upload(data, name)
    if max(image.size) > STORED_SIDE:
        image.thumbnail((STORED_SIDE, STORED_SIDE), _LANCZOS)
    return _encode_png(image)
