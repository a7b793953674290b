"""The designer's previews of both cards: drawn from the pass data, so what changes the pass
changes the picture, and an upload shows where the wallet would show it."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from PIL import Image

from passes.wallet.apple import preview as apple
from passes.wallet.apple.images import ImageError, reencode_upload
from passes.wallet.google import preview as google
from passes.wallet.sample import SAMPLE_BRANDING, sample_card_view


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGB")


def solid_png(colour: tuple[int, int, int], size: tuple[int, int] = (750, 246)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("module", "render", "size"),
    [
        (apple, apple.apple_card_preview, (640, 840)),
        (google, google.google_card_preview, (640, 860)),
    ],
)
def test_a_preview_is_the_card_at_2x_in_the_programs_colours(
    module: object, render: object, size: tuple[int, int]
) -> None:
    assert callable(render)
    image = picture(render(sample_card_view()))
    assert image.size == size
    assert image.getpixel((size[0] // 2, 6)) == (0x3B, 0x2A, 0x20)  # the background, top centre
    green = replace(SAMPLE_BRANDING, background_color="#0a7d32")
    repainted = picture(render(sample_card_view(green)))
    assert repainted.getpixel((size[0] // 2, 6)) == (0x0A, 0x7D, 0x32)


def test_an_uploaded_strip_shows_where_each_wallet_shows_it() -> None:
    red = replace(SAMPLE_BRANDING, strip_image=solid_png((200, 10, 10)))
    apple_image = picture(apple.apple_card_preview(sample_card_view(red)))
    assert apple_image.getpixel((600, 130)) == (200, 10, 10)  # the strip, right of the balance
    google_image = picture(google.google_card_preview(sample_card_view(red)))
    assert google_image.getpixel((320, 820)) == (200, 10, 10)  # the hero, along the bottom
    plain = picture(apple.apple_card_preview(sample_card_view()))
    assert plain.getpixel((600, 130)) != (200, 10, 10)


def test_long_texts_are_cut_to_fit_not_drawn_over_each_other() -> None:
    from passes.wallet.drawing import fitted, font

    name = "Очень длинное название программы " * 4
    cut = fitted(name, 30, 400)
    assert cut.endswith("…") and len(cut) < len(name) and font(30).getlength(cut) <= 400
    assert fitted("Зерно", 30, 400) == "Зерно"  # what fits is left alone
    # The header's right edge keeps its margin however long the program name.
    long = replace(SAMPLE_BRANDING, program_name=name)
    view = sample_card_view(long, member_name="Анна-Мария Константинопольская-Заречная")
    image = picture(apple.apple_card_preview(view))
    assert image.getpixel((638, 60)) == image.getpixel((639, 60))  # nothing drawn at the edge
    assert picture(google.google_card_preview(view)).width == 640


def test_uploads_are_re_encoded_to_their_pixels_only() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (3000, 1000), (1, 2, 3)).save(
        buffer, format="JPEG", exif=b"Exif\x00\x00secret", comment=b"secret"
    )
    stored = reencode_upload(buffer.getvalue() + b"trailing bytes", "strip")
    image = Image.open(io.BytesIO(stored))
    assert image.format == "PNG" and max(image.size) == 2048
    assert b"secret" not in stored and b"trailing" not in stored
    with pytest.raises(ImageError, match="logo image could not be read"):
        reencode_upload(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "logo")
