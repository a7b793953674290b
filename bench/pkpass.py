"""Signed passes per second vs raw RSA-2048 signatures per second, same key, one core, one run.

Prints both rates and their ratio (target >= 0.90), plus a naive builder (cryptography's PKCS7
builder + zipfile, hashing every file per pass) for comparison. Rounds alternate between the
measured paths so that machine noise hits all of them alike; the median round is reported.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from passes.wallet.apple.certificates import load_signing_material
from passes.wallet.apple.devcerts import create_dev_chain
from passes.wallet.apple.images import render_pass_images
from passes.wallet.apple.issuer import ApplePassIssuer
from passes.wallet.apple.pass_json import PassIdentity, pass_json
from passes.wallet.apple.signature import reference_sign
from passes.wallet.view import Branding, CardView, Location


def views(count: int) -> list[CardView]:
    branding = Branding(
        program_key="zerno",
        design_version=1,
        organization_name="Кофейня «Зерно»",
        program_name="Зерно",
        description="Карта лояльности кофейни «Зерно»",
        background_color="#3b2a20",
        foreground_color="#ffffff",
        label_color="#e8d5b5",
        logo_image=None,
        icon_image=None,
        strip_image=None,
        points_label="Баллы",
        terms="1 балл за каждые 10 ₽ покупки. Баллами можно оплатить до 30 % чека.",
        support_email="hello@zerno.example",
        support_phone="+7 495 000-00-00",
        website="https://zerno.example",
        locations=(
            Location(55.7596, 37.6480, "Зерно на Покровке"),
            Location(55.7640, 37.5925, "Зерно у Патриарших"),
        ),
    )
    base = CardView(
        branding=branding,
        serial_number="",
        authentication_token="t" * 43,
        card_number="7701234567890128",
        display_number="7701 2345 6789 0128",
        barcode_payload="7701234567890128.AbCdEfGh",
        member_name="Анна Смирнова",
        points_balance=0,
        tier_name="Гурман",
        offers=(),
        member_since=datetime(2026, 1, 2, tzinfo=UTC),
        updated_at=datetime(2026, 11, 23, tzinfo=UTC),
    )
    return [
        replace(base, serial_number=f"serial-{i:020d}", points_balance=i * 7) for i in range(count)
    ]


def rate(operation: Callable[[int], object], seconds: float) -> float:
    """Calls per second of ``operation(i)`` over about ``seconds``."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(32):
            operation(count)
            count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per path per round")
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    with tempfile.TemporaryDirectory() as directory:
        chain = create_dev_chain(
            Path(directory),
            pass_type_identifier="pass.bench.loyalpass",
            team_identifier="BENCH00001",
        )
        material = load_signing_material(
            certificate=chain.certificate,
            private_key=chain.private_key,
            private_key_password=None,
            p12=None,
            p12_password=None,
            wwdr=chain.wwdr_certificate,
        )
    key = material.private_key
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    identity = PassIdentity(
        "pass.bench.loyalpass", "BENCH00001", "https://loyalpass.example/passkit"
    )
    issuer = ApplePassIssuer(material, identity)
    cards = views(256)
    issuer.build(cards[0])  # render and cache the design's images once, as a server does
    images = render_pass_images(
        title="Зерно", background="#3b2a20", foreground="#ffffff", logo=None, icon=None, strip=None
    )
    digests = [hashlib.sha256(f"manifest {i}".encode()).digest() for i in range(256)]

    def raw_signature(i: int) -> object:
        return key.sign(digests[i & 255], padding.PKCS1v15(), hashes.SHA256())

    def signed_pass(i: int) -> object:
        return issuer.build(cards[i & 255])

    def naive_pass(i: int) -> object:
        body = pass_json(cards[i & 255], identity)
        files = {"pass.json": body, **images}
        manifest = json.dumps(
            {name: hashlib.sha1(data).hexdigest() for name, data in files.items()}  # noqa: S324
        ).encode()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
            archive.writestr("manifest.json", manifest)
            archive.writestr("signature", reference_sign(material, manifest))
        return buffer.getvalue()

    paths = {"raw RSA-2048 signatures": raw_signature, "signed passes": signed_pass}
    paths["naive passes"] = naive_pass
    results: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, operation in paths.items():
            results[name].append(rate(operation, args.seconds))

    medians = {name: statistics.median(values) for name, values in results.items()}
    raw = medians["raw RSA-2048 signatures"]
    size = len(issuer.build(cards[1]))
    print(f"one core, {args.rounds} rounds x {args.seconds:.1f} s per path; pass size {size} bytes")
    for name, value in medians.items():
        print(f"{name:>26}: {value:8.1f} /s   ratio to raw signatures {value / raw:.3f}")
    print(
        f"signed passes / raw RSA-2048 signatures = {medians['signed passes'] / raw:.3f}"
        " (target >= 0.90)"
    )


if __name__ == "__main__":
    main()
