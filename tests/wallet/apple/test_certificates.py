from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from passes.wallet.apple.certificates import (
    CertificateError,
    SigningMaterial,
    check_signing_material,
    load_signing_material,
)
from passes.wallet.apple.devcerts import DevChain, create_dev_chain

PASS_TYPE_IDENTIFIER = "pass.dev.loyalpass.test"
TEAM_IDENTIFIER = "LPTEST0001"
OTHER_PASS_TYPE_IDENTIFIER = "pass.dev.loyalpass.other"
OTHER_TEAM_IDENTIFIER = "LPOTHER001"


def load_chain(chain: DevChain, **overrides: Any) -> SigningMaterial:
    """load_signing_material for `chain`'s PEM files, with some arguments replaced."""
    arguments: dict[str, Any] = {
        "certificate": chain.certificate,
        "private_key": chain.private_key,
        "private_key_password": None,
        "p12": None,
        "p12_password": None,
        "wwdr": chain.wwdr_certificate,
    }
    arguments.update(overrides)
    return load_signing_material(**arguments)


def check(material: SigningMaterial, now: datetime | None = None) -> None:
    check_signing_material(
        material,
        pass_type_identifier=material.pass_type_identifier,
        team_identifier=material.team_identifier,
        now=now or datetime.now(UTC),
    )


def message(excinfo: pytest.ExceptionInfo[CertificateError], setting: str) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    assert "\r" not in text
    assert text.startswith(setting), text
    return text


@pytest.fixture(scope="module")
def other_chain(tmp_path_factory: pytest.TempPathFactory) -> DevChain:
    """A second chain with an encrypted key and a .p12; its WWDR has the same name as ours."""
    return create_dev_chain(
        tmp_path_factory.mktemp("other-chain"),
        pass_type_identifier=OTHER_PASS_TYPE_IDENTIFIER,
        team_identifier=OTHER_TEAM_IDENTIFIER,
        key_password=b"key secret",
        write_p12=True,
        p12_password=b"p12 secret",
    )


@pytest.fixture
def der_wwdr(dev_chain: DevChain, tmp_path: Path) -> Path:
    path = tmp_path / "AppleWWDRCAG4.cer"
    wwdr = x509.load_pem_x509_certificate(dev_chain.wwdr_certificate.read_bytes())
    path.write_bytes(wwdr.public_bytes(serialization.Encoding.DER))
    return path


# --- loading ------------------------------------------------------------------------------


def test_loads_pem_certificate_and_key(
    signing_material: SigningMaterial, dev_chain: DevChain
) -> None:
    material = signing_material
    assert material.pass_type_identifier == PASS_TYPE_IDENTIFIER
    assert material.team_identifier == TEAM_IDENTIFIER
    assert material.is_development
    assert material.certificate == x509.load_pem_x509_certificate(
        dev_chain.certificate.read_bytes()
    )
    assert material.wwdr.subject == material.certificate.issuer
    assert material.certificate_source == f"APPLE_CERTIFICATE ({dev_chain.certificate})"
    check_signing_material(
        material,
        pass_type_identifier=PASS_TYPE_IDENTIFIER,
        team_identifier=TEAM_IDENTIFIER,
        now=datetime.now(UTC),
    )


def test_loads_encrypted_key_with_password(other_chain: DevChain) -> None:
    material = load_chain(other_chain, private_key_password="key secret")
    assert material.pass_type_identifier == OTHER_PASS_TYPE_IDENTIFIER
    assert material.team_identifier == OTHER_TEAM_IDENTIFIER
    check(material)


@pytest.mark.parametrize(
    ("password", "expected"),
    [("wrong", "is wrong"), (None, "is not set"), ("", "is not set")],
)
def test_encrypted_key_needs_right_password(
    other_chain: DevChain, password: str | None, expected: str
) -> None:
    with pytest.raises(CertificateError) as excinfo:
        load_chain(other_chain, private_key_password=password)
    text = message(excinfo, "APPLE_PRIVATE_KEY_PASSWORD")
    assert expected in text
    assert str(other_chain.private_key) in text


def test_password_for_unencrypted_key_is_an_error(dev_chain: DevChain) -> None:
    with pytest.raises(CertificateError) as excinfo:
        load_chain(dev_chain, private_key_password="surprise")
    assert "is not encrypted" in message(excinfo, "APPLE_PRIVATE_KEY_PASSWORD")


def test_loads_p12_with_password(other_chain: DevChain, dev_chain: DevChain) -> None:
    assert other_chain.p12 is not None
    # The .p12 wins over a certificate/key pair, even one from another chain.
    material = load_chain(
        other_chain,
        certificate=dev_chain.certificate,
        private_key=dev_chain.private_key,
        p12=other_chain.p12,
        p12_password="p12 secret",
    )
    assert material.pass_type_identifier == OTHER_PASS_TYPE_IDENTIFIER
    assert material.certificate_source == f"APPLE_P12 ({other_chain.p12})"
    check(material)


@pytest.mark.parametrize(
    ("password", "expected"), [("wrong", "is wrong"), (None, "is not set"), ("", "is not set")]
)
def test_p12_needs_right_password(
    other_chain: DevChain, password: str | None, expected: str
) -> None:
    with pytest.raises(CertificateError) as excinfo:
        load_chain(other_chain, p12=other_chain.p12, p12_password=password)
    text = message(excinfo, "APPLE_P12_PASSWORD")
    assert expected in text
    assert str(other_chain.p12) in text


def test_p12_that_is_not_pkcs12(dev_chain: DevChain) -> None:
    with pytest.raises(CertificateError) as excinfo:
        load_chain(dev_chain, p12=dev_chain.certificate, p12_password="x")
    assert "is not a PKCS#12" in message(excinfo, "APPLE_P12 (")


@pytest.mark.parametrize("setting", ["certificate", "private_key", "wwdr", "p12"])
def test_missing_file(dev_chain: DevChain, tmp_path: Path, setting: str) -> None:
    missing = tmp_path / "nowhere" / f"{setting}.pem"
    names = {
        "certificate": "APPLE_CERTIFICATE",
        "private_key": "APPLE_PRIVATE_KEY",
        "wwdr": "APPLE_WWDR_CERTIFICATE",
        "p12": "APPLE_P12",
    }
    with pytest.raises(CertificateError) as excinfo:
        load_chain(dev_chain, **{setting: missing})
    assert message(excinfo, names[setting]) == f"{names[setting]} ({missing}) does not exist"


def test_unset_certificate(dev_chain: DevChain) -> None:
    with pytest.raises(CertificateError) as excinfo:
        load_chain(dev_chain, certificate=None)
    assert "is not set" in message(excinfo, "APPLE_CERTIFICATE")
    with pytest.raises(CertificateError) as excinfo:
        load_chain(dev_chain, private_key=None)
    assert "is not set" in message(excinfo, "APPLE_PRIVATE_KEY")


def test_der_wwdr_and_der_certificate(
    dev_chain: DevChain, signing_material: SigningMaterial, der_wwdr: Path, tmp_path: Path
) -> None:
    der_certificate = tmp_path / "pass.cer"
    der_certificate.write_bytes(
        signing_material.certificate.public_bytes(serialization.Encoding.DER)
    )
    material = load_chain(dev_chain, certificate=der_certificate, wwdr=der_wwdr)
    assert material.wwdr == signing_material.wwdr
    assert material.certificate == signing_material.certificate
    check(material)


def test_wwdr_that_is_not_a_certificate(dev_chain: DevChain) -> None:
    with pytest.raises(CertificateError) as excinfo:
        load_chain(dev_chain, wwdr=dev_chain.private_key)
    text = message(excinfo, "APPLE_WWDR_CERTIFICATE")
    assert text == (
        f"APPLE_WWDR_CERTIFICATE ({dev_chain.private_key}) is not a PEM or DER X.509 certificate"
    )


def test_key_file_that_is_not_a_key(dev_chain: DevChain) -> None:
    with pytest.raises(CertificateError) as excinfo:
        load_chain(dev_chain, private_key=dev_chain.certificate)
    assert "is not a PEM private key" in message(excinfo, "APPLE_PRIVATE_KEY (")


# --- checking -----------------------------------------------------------------------------


def test_key_of_another_chain_does_not_match(dev_chain: DevChain, other_chain: DevChain) -> None:
    material = load_chain(
        dev_chain, private_key=other_chain.private_key, private_key_password="key secret"
    )
    with pytest.raises(CertificateError) as excinfo:
        check(material)
    assert message(excinfo, "APPLE_PRIVATE_KEY") == (
        f"APPLE_PRIVATE_KEY ({other_chain.private_key}) does not match the certificate in "
        f"APPLE_CERTIFICATE ({dev_chain.certificate})"
    )


def test_expired_certificate(tmp_path: Path) -> None:
    chain = create_dev_chain(
        tmp_path,
        pass_type_identifier=PASS_TYPE_IDENTIFIER,
        team_identifier=TEAM_IDENTIFIER,
        not_before=datetime(2023, 1, 1, tzinfo=UTC),
        not_after=datetime(2024, 1, 1, tzinfo=UTC),
    )
    material = load_chain(chain)
    with pytest.raises(CertificateError) as excinfo:
        check(material)
    assert message(excinfo, "APPLE_CERTIFICATE") == (
        f"APPLE_CERTIFICATE ({chain.certificate}) expired on 2024-01-01T00:00:00Z"
    )


def test_certificate_not_yet_valid(signing_material: SigningMaterial) -> None:
    not_before = signing_material.certificate.not_valid_before_utc
    with pytest.raises(CertificateError) as excinfo:
        check(signing_material, now=not_before - timedelta(seconds=1))
    text = message(excinfo, "APPLE_CERTIFICATE")
    assert text.endswith(f"is not valid before {not_before:%Y-%m-%dT%H:%M:%SZ}")


def test_expiry_is_checked_at_the_given_time(signing_material: SigningMaterial) -> None:
    not_after = signing_material.certificate.not_valid_after_utc
    check(signing_material, now=not_after)
    with pytest.raises(CertificateError) as excinfo:
        check(signing_material, now=not_after + timedelta(seconds=1))
    assert "expired on" in message(excinfo, "APPLE_CERTIFICATE")


def test_naive_now_is_rejected(signing_material: SigningMaterial) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check(signing_material, now=datetime(2025, 1, 1))  # noqa: DTZ001


def test_wrong_pass_type_identifier(signing_material: SigningMaterial) -> None:
    with pytest.raises(CertificateError) as excinfo:
        check_signing_material(
            signing_material,
            pass_type_identifier="pass.com.example.other",
            team_identifier=TEAM_IDENTIFIER,
            now=datetime.now(UTC),
        )
    assert message(excinfo, "APPLE_PASS_TYPE_IDENTIFIER").startswith(
        'APPLE_PASS_TYPE_IDENTIFIER is "pass.com.example.other" '
        f'but the certificate\'s UID is "{PASS_TYPE_IDENTIFIER}"'
    )


def test_wrong_team_identifier(signing_material: SigningMaterial) -> None:
    with pytest.raises(CertificateError) as excinfo:
        check_signing_material(
            signing_material,
            pass_type_identifier=PASS_TYPE_IDENTIFIER,
            team_identifier="ABCDE12345",
            now=datetime.now(UTC),
        )
    assert message(excinfo, "APPLE_TEAM_IDENTIFIER").startswith(
        f'APPLE_TEAM_IDENTIFIER is "ABCDE12345" but the certificate\'s OU is "{TEAM_IDENTIFIER}"'
    )


@pytest.mark.parametrize("setting", ["pass_type_identifier", "team_identifier"])
def test_unset_identifier(signing_material: SigningMaterial, setting: str) -> None:
    identifiers = {
        "pass_type_identifier": PASS_TYPE_IDENTIFIER,
        "team_identifier": TEAM_IDENTIFIER,
        setting: "",
    }
    with pytest.raises(CertificateError) as excinfo:
        check_signing_material(signing_material, now=datetime.now(UTC), **identifiers)
    assert "is not set" in message(excinfo, f"APPLE_{setting.upper()}")


def test_wwdr_with_other_name_did_not_issue_certificate(dev_chain: DevChain) -> None:
    material = load_chain(dev_chain, wwdr=dev_chain.root_certificate)
    with pytest.raises(CertificateError) as excinfo:
        check(material)
    text = message(excinfo, "APPLE_WWDR_CERTIFICATE")
    assert f"({dev_chain.root_certificate}) did not issue the certificate" in text
    assert "loyalpass development root" in text


def test_wwdr_with_same_name_but_other_key_did_not_issue_certificate(
    dev_chain: DevChain, other_chain: DevChain
) -> None:
    material = load_chain(dev_chain, wwdr=other_chain.wwdr_certificate)
    assert material.wwdr.subject == material.certificate.issuer
    with pytest.raises(CertificateError) as excinfo:
        check(material)
    text = message(excinfo, "APPLE_WWDR_CERTIFICATE")
    assert "signature does not verify" in text


def test_error_message_is_always_one_line() -> None:
    error = CertificateError("APPLE_CERTIFICATE (/tmp/a\nb\r\nc.pem) does not exist\n")
    assert str(error) == "APPLE_CERTIFICATE (/tmp/a b c.pem) does not exist"
