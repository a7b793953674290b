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
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from passes.wallet.apple.certificates import load_dev_chain_material
from passes.wallet.apple.devcerts import create_dev_chain
from passes.wallet.apple.images import render_pass_images
from passes.wallet.apple.issuer import ApplePassIssuer
from passes.wallet.apple.pass_json import PassIdentity, pass_json
from passes.wallet.apple.signature import reference_sign
from passes.wallet.sample import sample_card_view
from passes.wallet.view import CardView


def views(count: int) -> list[CardView]:
    """Distinct cards (serial, balance) of one design, as a busy program's would be."""
    return [
        sample_card_view(serial_number=f"serial-{i:020d}", points_balance=i * 7)
        for i in range(count)
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
        material = load_dev_chain_material(chain)
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
