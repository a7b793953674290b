"""Pass images: names, exact sizes, fitting of uploads, generated art, determinism."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, ImageCms

from passes.wallet.apple.images import (
    ICON_SIZES,
    IMAGE_NAMES,
    LOGO_BOXES,
    MAX_UPLOAD_BYTES,
    STRIP_SIZES,
    ImageError,
    _initials,
    render_pass_images,
    rgb_string,
    validate_colour,
)

BG = "#3b2314"
FG = "#f5e6c8"
BG_RGB = (0x3B, 0x23, 0x14)
FG_RGB = (0xF5, 0xE6, 0xC8)
SUFFIX = {1: "", 2: "@2x", 3: "@3x"}


def _png(
    size: tuple[int, int], colour: tuple[int, ...] = (200, 30, 30, 255), **save: object
) -> bytes:
    image = Image.new("RGBA", size, colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save)
    return buffer.getvalue()


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image


def _colours(image: Image.Image) -> set[tuple[int, int, int]]:
    """Every distinct RGB colour in the image."""
    rgb = image.convert("RGB")
    data = rgb.tobytes()
    return {(data[i], data[i + 1], data[i + 2]) for i in range(0, len(data), 3)}


def _chunks(png: bytes) -> list[bytes]:
    """The chunk types of a PNG file, in order."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    types, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        types.append(png[offset + 4 : offset + 8])
        offset += 12 + length
    return types


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a size that its few bytes of pixel data do not back up."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _render(**uploads: bytes) -> dict[str, bytes]:
    return render_pass_images(title="Кофейня Зерно", background=BG, foreground=FG, **uploads)


@pytest.fixture(scope="module")
def generated() -> dict[str, bytes]:
    return _render()


# --------------------------------------------------------------------------- names and sizes


def test_every_name_present(generated: dict[str, bytes]) -> None:
    expected = {f"{kind}{s}.png" for kind in ("icon", "logo", "strip") for s in SUFFIX.values()}
    assert set(generated) == expected == set(IMAGE_NAMES)


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_generated_sizes(generated: dict[str, bytes], scale: int) -> None:
    icon = _open(generated[f"icon{SUFFIX[scale]}.png"])
    assert icon.size == (ICON_SIZES[scale], ICON_SIZES[scale]) == (29 * scale, 29 * scale)
    strip = _open(generated[f"strip{SUFFIX[scale]}.png"])
    assert strip.size == STRIP_SIZES[scale] == (375 * scale, 123 * scale)
    logo = _open(generated[f"logo{SUFFIX[scale]}.png"])
    box_w, box_h = LOGO_BOXES[scale]
    assert (box_w, box_h) == (160 * scale, 50 * scale)
    assert logo.width <= box_w and logo.height <= box_h


def test_generated_logo_is_transparent_monogram(generated: dict[str, bytes]) -> None:
    logo = _open(generated["logo@3x.png"]).convert("RGBA")
    assert logo.width == logo.height  # a circle, not the shop name spelled out
    corner = logo.getpixel((0, 0))
    assert isinstance(corner, tuple) and corner[3] == 0  # transparent outside the disc
    disc_top = logo.getpixel((logo.width // 2, logo.height // 12))
    assert disc_top == (*FG_RGB, 255)


def test_generated_strip_has_no_transparency_and_uses_background(
    generated: dict[str, bytes],
) -> None:
    strip = _open(generated["strip.png"])
    assert strip.mode == "RGB"
    top_left = strip.getpixel((0, 0))
    assert isinstance(top_left, tuple)
    assert max(abs(a - b) for a, b in zip(top_left, BG_RGB, strict=True)) <= 3
    assert len(_colours(strip)) > 20  # a gradient and circles, not a flat fill


# --------------------------------------------------------------------------- generated icon


def test_initials() -> None:
    assert _initials("Кофейня Зерно") == "КЗ"
    assert _initials("blue bottle coffee") == "BB"
    assert _initials("Starbucks") == "S"
    assert _initials("  «Пекарня»  ") == "П"
    assert _initials("咖啡") == ""  # the font has no CJK glyphs: no tofu boxes
    assert _initials("") == ""


def test_cyrillic_title_draws_foreground_initials(generated: dict[str, bytes]) -> None:
    for scale in (1, 2, 3):
        icon = _open(generated[f"icon{SUFFIX[scale]}.png"])
        assert icon.getpixel((0, 0)) == BG_RGB
        colours = _colours(icon)
        assert BG_RGB in colours
        if scale == 3:
            assert FG_RGB in colours  # solid stroke pixels of the letters
        else:
            assert any(sum(c) > sum(BG_RGB) + 300 for c in colours)  # light ink is there


def test_icon_differs_by_initials() -> None:
    one = render_pass_images(title="Кофейня", background=BG, foreground=FG)
    two = render_pass_images(title="Кофейня Зерно", background=BG, foreground=FG)
    assert one["icon@3x.png"] != two["icon@3x.png"]
    assert one["strip@3x.png"] == two["strip@3x.png"]  # the strip has no text


def test_title_without_drawable_letters_still_renders() -> None:
    files = render_pass_images(title="☕ 咖啡", background="#222222", foreground="#ff9900")
    assert set(files) == set(IMAGE_NAMES)
    assert (0xFF, 0x99, 0x00) in _colours(_open(files["icon@3x.png"]))


# --------------------------------------------------------------------------- uploads


def test_logo_upload_contained_and_aspect_kept() -> None:
    files = _render(logo=_png((1000, 200)))
    for scale in (1, 2, 3):
        logo = _open(files[f"logo{SUFFIX[scale]}.png"])
        box_w, box_h = LOGO_BOXES[scale]
        assert logo.width <= box_w and logo.height <= box_h
        assert logo.size == (160 * scale, 32 * scale)
        assert logo.width / logo.height == pytest.approx(5.0)


def test_logo_upload_tall_is_limited_by_height() -> None:
    files = _render(logo=_png((120, 480)))
    for scale in (1, 2, 3):
        logo = _open(files[f"logo{SUFFIX[scale]}.png"])
        assert logo.height == 50 * scale
        assert logo.width / logo.height == pytest.approx(0.25, abs=0.02)


def test_logo_transparent_margins_are_trimmed_and_kept_transparent() -> None:
    image = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    image.paste((10, 20, 30, 255), (100, 150, 300, 250))  # a 200x100 mark inside
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    logo = _open(_render(logo=buffer.getvalue())["logo@3x.png"])
    assert logo.size == (300, 150)
    assert logo.convert("RGBA").getpixel((5, 5)) == (10, 20, 30, 255)


def test_strip_upload_cover_cropped_from_tall_image() -> None:
    files = _render(strip=_png((300, 1200)))
    for scale in (1, 2, 3):
        strip = _open(files[f"strip{SUFFIX[scale]}.png"])
        assert strip.size == STRIP_SIZES[scale]
        assert _colours(strip) == {(200, 30, 30)}  # covered edge to edge, no letterboxing


def test_icon_upload_centre_cropped_to_square() -> None:
    image = Image.new("RGB", (300, 100), (0, 0, 255))
    image.paste((0, 255, 0), (100, 0, 200, 100))  # the centre square is green
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    files = _render(icon=buffer.getvalue())
    for scale in (1, 2, 3):
        icon = _open(files[f"icon{SUFFIX[scale]}.png"])
        assert icon.width == icon.height == ICON_SIZES[scale]
        assert _colours(icon) == {(0, 255, 0)}


def test_icon_upload_with_transparency_is_flattened_on_background() -> None:
    icon = _open(_render(icon=_png((64, 64), (0, 0, 0, 0)))["icon.png"])
    assert icon.mode == "RGB"
    assert _colours(icon) == {BG_RGB}


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (200, 100), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways; display rotated 90° clockwise
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    logo = _open(_render(logo=buffer.getvalue())["logo.png"])
    assert logo.size == (25, 50)  # upright it is 100x200, i.e. tall


def test_upload_metadata_does_not_survive() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret GPS 55.75,37.61")
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    upload = _png((400, 300), pnginfo=info, exif=exif.tobytes(), icc_profile=srgb)
    assert b"secret GPS" in upload and b"iCCP" in upload
    files = _render(logo=upload, icon=upload, strip=upload)
    for name, data in files.items():
        assert set(_chunks(data)) <= {b"IHDR", b"IDAT", b"IEND"}, name
        assert b"secret" not in data and b"CameraMaker" not in data


@pytest.mark.parametrize("name", ["logo", "icon", "strip"])
def test_garbage_bytes_raise_image_error_naming_image(name: str) -> None:
    with pytest.raises(ImageError, match=name) as excinfo:
        _render(**{name: b"this is not an image at all"})
    assert isinstance(excinfo.value, ValueError)


@pytest.mark.parametrize(
    "data",
    [b"", _png((10, 10))[:40], b"%PDF-1.7\n" + b"0" * 100],
    ids=["empty", "truncated-png", "pdf"],
)
def test_unreadable_uploads_raise(data: bytes) -> None:
    with pytest.raises(ImageError, match="strip"):
        _render(strip=data)


@pytest.mark.parametrize(
    "size",
    [(9000, 9000), (20000, 10000), (100_000, 1)],
    ids=["over-our-limit", "over-pillow-bomb-limit", "absurdly-wide"],
)
def test_absurd_dimensions_rejected_before_decoding(size: tuple[int, int]) -> None:
    with pytest.raises(ImageError, match=r"logo.*pixels"):
        _render(logo=_png_claiming(*size))


def test_absurd_byte_size_rejected() -> None:
    with pytest.raises(ImageError, match=r"icon.*too large"):
        _render(icon=b"\x89PNG" + b"\0" * MAX_UPLOAD_BYTES)


# --------------------------------------------------------------------------- determinism


def test_generated_output_is_deterministic() -> None:
    assert _render() == _render()


def test_upload_output_is_deterministic() -> None:
    upload = _png((640, 480), (12, 140, 200, 180))
    first = _render(logo=upload, icon=upload, strip=upload)
    second = _render(logo=upload, icon=upload, strip=upload)
    assert first == second


def test_colours_change_output() -> None:
    other = render_pass_images(title="Кофейня Зерно", background="#00704a", foreground=FG)
    assert other["strip.png"] != _render()["strip.png"]


# --------------------------------------------------------------------------- colours


def test_validate_colour_normalises() -> None:
    assert validate_colour("#ABCDEF") == "#abcdef"
    assert validate_colour("#0a0B0c") == "#0a0b0c"


@pytest.mark.parametrize(
    "value", ["red", "#12345", "#gggggg", "abcdef", "#1234567", "#abc", "", "#abcdef\n#000000"]
)
def test_validate_colour_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        validate_colour(value)


def test_rgb_string() -> None:
    assert rgb_string("#3B2314") == "rgb(59, 35, 20)"
    assert rgb_string("#ffffff") == "rgb(255, 255, 255)"
    with pytest.raises(ValueError):
        rgb_string("white")


def test_bad_colour_rejected_by_renderer() -> None:
    with pytest.raises(ValueError):
        render_pass_images(title="x", background="blue", foreground=FG)
