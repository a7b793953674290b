"""Issue signed passes for card views; caches everything that is shared by a program design."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

from passes.wallet.apple.certificates import SigningMaterial
from passes.wallet.apple.images import render_pass_images
from passes.wallet.apple.package import StaticFiles, build_pkpass
from passes.wallet.apple.pass_json import PassIdentity, PassJsonTemplate, Shape, shape_of
from passes.wallet.apple.signature import PassSigner
from passes.wallet.apple.strings import pass_strings
from passes.wallet.view import Branding, CardView

DESIGN_CACHE_SIZE = 64


class ApplePassIssuer:
    """Builds ``.pkpass`` files. Thread-safe; one per process.

    Parsed key and certificates live in the signer. Rendered images, their hashes and zip records,
    and pass.json templates live in small caches keyed by (program, design version), so a redesign
    is picked up at once and old designs age out. Cache hits take no lock.
    """

    def __init__(self, material: SigningMaterial, identity: PassIdentity) -> None:
        self.material = material
        self.identity = identity
        self.signer = PassSigner(material)
        self._designs: OrderedDict[tuple[str, int], StaticFiles] = OrderedDict()
        self._templates: OrderedDict[tuple[str, int, Shape], PassJsonTemplate] = OrderedDict()
        self._lock = threading.Lock()

    def static_files(self, branding: Branding) -> StaticFiles:
        """The prepared images of ``branding``'s design, rendered on first use."""
        key = (branding.program_key, branding.design_version)
        cached = self._designs.get(key)
        if cached is not None:
            return cached
        files = render_pass_images(
            title=branding.program_name,
            background=branding.background_color,
            foreground=branding.foreground_color,
            logo=branding.logo_image,
            icon=branding.icon_image,
            strip=branding.strip_image,
        )
        prepared = StaticFiles({**files, **pass_strings()})
        with self._lock:
            self._designs[key] = prepared
            while len(self._designs) > DESIGN_CACHE_SIZE:
                self._designs.popitem(last=False)
        return prepared

    def pass_json(self, view: CardView) -> bytes:
        """The pass.json bytes of ``view``, from the cached template of its design and shape."""
        branding = view.branding
        shape = shape_of(view)
        key = (branding.program_key, branding.design_version, shape)
        template = self._templates.get(key)
        if template is None:
            template = PassJsonTemplate(branding, self.identity, shape)
            with self._lock:
                self._templates[key] = template
                while len(self._templates) > DESIGN_CACHE_SIZE * 4:
                    self._templates.popitem(last=False)
        return template.render(view)

    def build(self, view: CardView, signing_time: datetime | None = None) -> bytes:
        """A complete signed ``.pkpass`` for ``view``."""
        return build_pkpass(
            self.pass_json(view), self.static_files(view.branding), self.signer, signing_time
        )
