"""QR codes of a card's barcode payload, for the card web page.

The pass itself carries the barcode for Wallet; these images are for people without Apple
Wallet, who show the card page at the till instead. Error correction M matches what the
pass asks Wallet to draw, so a scanner sees the same symbol either way.
"""

from __future__ import annotations

import io
from typing import Any, Final

import qrcode
import qrcode.constants
import qrcode.exceptions
import qrcode.image.pil
import qrcode.image.svg

__all__ = ["QRError", "qr_png", "qr_svg"]

#: Pixels per module in the SVG's nominal size; CSS normally scales it anyway.
_SVG_PX_PER_MODULE: Final = 8


class QRError(ValueError):
    """The payload cannot be drawn as a QR code (empty, or too long for any version)."""


def _qr(payload: str, *, border: int, scale: int, factory: Any) -> Any:
    """Build the smallest QR symbol that holds ``payload`` with error correction M."""
    if not isinstance(payload, str) or not payload:
        raise QRError("QR payload must be a non-empty string")
    if scale < 1:
        raise ValueError("scale must be at least 1 pixel per module")
    if border < 0:
        raise ValueError("border must not be negative")
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=scale,
        border=border,
        image_factory=factory,
    )
    code.add_data(payload)
    try:
        code.make(fit=True)
    except (qrcode.exceptions.DataOverflowError, ValueError) as exc:
        # fit=True reports overflow as "Invalid version (was 41...)" ValueError in qrcode 8
        raise QRError("QR payload is too long for a QR code") from exc
    return code


def qr_png(payload: str, *, scale: int = 10, border: int = 4) -> bytes:
    """A black-on-white PNG: ``scale`` pixels per module, ``border`` modules of quiet zone.

    Border 4 is the quiet zone the QR standard requires; smaller risks failed scans.
    """
    code = _qr(payload, border=border, scale=scale, factory=qrcode.image.pil.PilImage)
    image = code.make_image(fill_color="black", back_color="white")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def qr_svg(payload: str) -> bytes:
    """A standalone SVG: one ``<path>`` for the modules over a white ``<rect>``.

    The white background keeps it scannable when the page is in dark mode. ``width`` and
    ``height`` are unitless (pixels) rather than the library's millimetres, so the image has a
    sensible default size on screen; the ``viewBox`` is one unit per module.
    """
    code = _qr(payload, border=4, scale=10, factory=qrcode.image.svg.SvgPathFillImage)
    image = code.make_image()
    root = image.get_image()
    side = str((code.modules_count + 2 * code.border) * _SVG_PX_PER_MODULE)
    root.set("width", side)
    root.set("height", side)
    root.set("shape-rendering", "crispEdges")
    if image.path is not None:
        image.path.attrib.pop("id", None)  # a fixed id would clash if inlined twice on a page
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()
