"""The signed pass, end to end without the web: bundle, signature, manifest and pass.json."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from passes.wallet.apple.certificates import SigningMaterial
from passes.wallet.apple.devcerts import DevChain
from passes.wallet.apple.issuer import ApplePassIssuer
from passes.wallet.apple.package import StaticFiles, build_pkpass
from passes.wallet.apple.pass_json import PassIdentity, pass_dict, w3c_date
from pkpass_check import openssl_verify, unpack, verify_pkpass
from support import IDENTITY, make_view

W3C = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")


def test_signed_pass_verifies_with_openssl_and_manifest_is_exact(
    signing_material: SigningMaterial, dev_chain: DevChain, tmp_path: Path
) -> None:
    issuer = ApplePassIssuer(signing_material, IDENTITY)
    data = issuer.build(make_view())
    document = verify_pkpass(data, dev_chain.root_certificate, tmp_path)
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    expected_images = {
        f"{kind}{scale}.png" for kind in ("icon", "logo", "strip") for scale in ("", "@2x", "@3x")
    }
    strings = {"en.lproj/pass.strings", "ru.lproj/pass.strings"}
    assert names == {"pass.json", "manifest.json", "signature"} | expected_images | strings
    assert document["serialNumber"] == "s3rial-Number-Random-24c"
    # The labels are looked up in the device's language: every one pass.json uses is there.
    russian = zipfile.ZipFile(io.BytesIO(data)).read("ru.lproj/pass.strings").decode("utf-16")
    shops_own = ("header_points", "balance", "offer")  # the points label, offer titles
    fixed = [
        field["label"]
        for area in document["storeCard"].values()
        for field in area
        if not field["key"].startswith(shops_own)
    ]
    assert fixed and all(f'"{label}" = "' in russian for label in fixed), (fixed, russian)
    assert '"Member" = "Участник";' in russian


def test_tampered_bundle_fails_verification(
    signing_material: SigningMaterial, dev_chain: DevChain, tmp_path: Path
) -> None:
    data = ApplePassIssuer(signing_material, IDENTITY).build(make_view())
    files = unpack(data, tmp_path)
    manifest = json.loads(files["manifest.json"])
    manifest["pass.json"] = "0" * 40
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert openssl_verify(tmp_path, dev_chain.root_certificate).returncode != 0


def test_other_root_does_not_verify(
    signing_material: SigningMaterial, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from passes.wallet.apple.devcerts import create_dev_chain

    stranger = create_dev_chain(
        tmp_path_factory.mktemp("stranger"), pass_type_identifier="pass.x", team_identifier="X"
    )
    data = ApplePassIssuer(signing_material, IDENTITY).build(make_view())
    unpack(data, tmp_path)
    assert openssl_verify(tmp_path, stranger.root_certificate).returncode != 0


def test_pass_json_is_a_store_card_with_every_required_part() -> None:
    document = pass_dict(make_view(), IDENTITY)
    for key in ("organizationName", "description", "serialNumber", "teamIdentifier"):
        assert document[key]
    assert document["formatVersion"] == 1
    assert document["passTypeIdentifier"] == "pass.dev.loyalpass.test"
    assert document["backgroundColor"] == "rgb(59, 42, 32)"
    assert document["logoText"] == "Зерно"
    card = document["storeCard"]
    assert card["headerFields"][0]["value"] == 1234
    balance = card["primaryFields"][0]
    assert balance["value"] == 1234 and "%@" in balance["changeMessage"]
    secondary = {field["key"]: field for field in card["secondaryFields"]}
    assert secondary["tier"]["value"] == "Гурман" and "%@" in secondary["tier"]["changeMessage"]
    assert secondary["member"]["value"] == "Анна Смирнова"
    assert card["auxiliaryFields"][0]["value"] == "7701 2345 6789 0128"
    back = {field["key"]: field for field in card["backFields"]}
    assert {"terms", "support", "offer", "member_since"} <= set(back)
    assert back["offer"]["changeMessage"] == "%@"  # the newest offer shows on the lock screen
    assert "hello@zerno.example" in back["support"]["value"]
    keys = [
        field["key"]
        for group in (
            "headerFields",
            "primaryFields",
            "secondaryFields",
            "auxiliaryFields",
            "backFields",
        )
        for field in card[group]
    ]
    assert len(keys) == len(set(keys)), "field keys must be unique across the pass"
    assert document["barcodes"] == [
        {
            "format": "PKBarcodeFormatQR",
            "message": "7701234567890128.AbCdEfGh",
            "messageEncoding": "iso-8859-1",
            "altText": "7701 2345 6789 0128",
        }
    ]
    assert "barcode" not in document
    assert document["webServiceURL"] == "https://loyalpass.test/passkit"
    assert len(document["authenticationToken"]) >= 16
    assert len(document["locations"]) == 10
    assert all(location["relevantText"] for location in document["locations"])


def test_dates_are_w3c_without_fractional_seconds() -> None:
    document = pass_dict(make_view(), IDENTITY)
    since = next(f for f in document["storeCard"]["backFields"] if f["key"] == "member_since")
    assert W3C.match(since["value"]), since["value"]
    assert since["value"] == "2026-01-02T03:04:05Z"
    with pytest.raises(ValueError, match="timezone"):
        w3c_date(datetime(2026, 1, 1))  # noqa: DTZ001


def test_without_https_public_url_the_pass_does_not_claim_a_web_service() -> None:
    document = pass_dict(make_view(), PassIdentity("pass.x", "T", None))
    assert "webServiceURL" not in document and "authenticationToken" not in document


def test_card_without_tier_or_stores_still_has_unique_fields() -> None:
    view = make_view(tier_name=None, offers=())
    view = replace(view, branding=replace(view.branding, locations=(), terms=""))
    document = pass_dict(view, IDENTITY)
    assert "locations" not in document
    assert [f["key"] for f in document["storeCard"]["secondaryFields"]] == ["member"]


def test_images_have_apple_sizes(signing_material: SigningMaterial) -> None:
    static = ApplePassIssuer(signing_material, IDENTITY).static_files(make_view().branding)
    sizes = {
        record.name.decode(): Image.open(io.BytesIO(record.local[30 + len(record.name) :])).size
        for record in static.records
        if record.name.endswith(b".png")
    }
    for scale, suffix in ((1, ""), (2, "@2x"), (3, "@3x")):
        assert sizes[f"icon{suffix}.png"] == (29 * scale, 29 * scale)
        assert sizes[f"strip{suffix}.png"] == (375 * scale, 123 * scale)
        width, height = sizes[f"logo{suffix}.png"]
        assert width <= 160 * scale and height <= 50 * scale


def test_design_cache_is_reused_and_invalidated_by_design_version(
    signing_material: SigningMaterial,
) -> None:
    issuer = ApplePassIssuer(signing_material, IDENTITY)
    view = make_view()
    first = issuer.static_files(view.branding)
    assert issuer.static_files(view.branding) is first
    redesigned = replace(view.branding, design_version=2, background_color="#003366")
    second = issuer.static_files(redesigned)
    assert second is not first
    icon = first.names.index("icon.png")
    assert second.records[icon].local != first.records[icon].local  # re-rendered in new colours


def test_static_files_refuse_reserved_names_and_need_an_icon() -> None:
    with pytest.raises(ValueError, match="may not be named"):
        StaticFiles({"icon.png": b"x", "manifest.json": b"{}"})
    with pytest.raises(ValueError, match="icon"):
        StaticFiles({"logo.png": b"x"})


def test_packager_signs_exactly_the_manifest_it_writes(signing_material: SigningMaterial) -> None:
    seen: list[bytes] = []

    class RecordingSigner:
        def sign(self, manifest: bytes, signing_time: datetime | None = None) -> bytes:
            seen.append(manifest)
            return b"sig"

    data = build_pkpass(b'{"a":1}', StaticFiles({"icon.png": b"png"}), RecordingSigner())
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.read("manifest.json") == seen[0]
    assert json.loads(seen[0]) == {
        "pass.json": hashlib.sha1(b'{"a":1}').hexdigest(),  # noqa: S324
        "icon.png": hashlib.sha1(b"png").hexdigest(),  # noqa: S324
    }
    assert archive.read("signature") == b"sig"
