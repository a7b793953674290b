from __future__ import annotations

import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtensionOID, NameOID, ObjectIdentifier

from passes.wallet.apple.devcerts import DevChain, create_dev_chain, is_development_certificate

# Built from parts so that no committed file contains a literal key header.
PEM_HEADER = b"-----" + b"BEGIN %s-----"

PASS_TYPE_ID_OID = ObjectIdentifier("1.2.840.113635.100.6.1.16")


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def subject(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | bytes:
    [attribute] = cert.subject.get_attributes_for_oid(oid)
    return attribute.value


def test_files(dev_chain: DevChain) -> None:
    directory = dev_chain.certificate.parent
    assert dev_chain.root_certificate == directory / "dev-root.pem"
    assert dev_chain.wwdr_certificate == directory / "wwdr.pem"
    assert dev_chain.certificate == directory / "pass.pem"
    assert dev_chain.private_key == directory / "pass.key"
    assert dev_chain.p12 is None
    # The root key must not exist anywhere: only these four files are written.
    assert sorted(p.name for p in directory.iterdir()) == [
        "dev-root.pem",
        "pass.key",
        "pass.pem",
        "wwdr.pem",
    ]
    assert stat.S_IMODE(dev_chain.private_key.stat().st_mode) == 0o600


def test_private_key_is_unencrypted_pkcs8_matching_the_certificate(
    dev_chain: DevChain,
) -> None:
    pem = dev_chain.private_key.read_bytes()
    assert pem.startswith(PEM_HEADER % b"PRIVATE KEY")
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert key.public_key() == load(dev_chain.certificate).public_key()


def test_pass_certificate(dev_chain: DevChain) -> None:
    cert = load(dev_chain.certificate)

    assert subject(cert, NameOID.USER_ID) == "pass.dev.loyalpass.test"
    assert subject(cert, NameOID.COMMON_NAME) == "Pass Type ID: pass.dev.loyalpass.test"
    assert subject(cert, NameOID.ORGANIZATIONAL_UNIT_NAME) == "LPTEST0001"
    assert subject(cert, NameOID.ORGANIZATION_NAME) == "loyalpass development"
    assert subject(cert, NameOID.COUNTRY_NAME) == "US"
    assert cert.issuer == load(dev_chain.wwdr_certificate).subject
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == "sha256"

    marker = cert.extensions.get_extension_for_oid(PASS_TYPE_ID_OID)
    assert not marker.critical
    assert isinstance(marker.value, x509.UnrecognizedExtension)
    value = b"pass.dev.loyalpass.test"
    assert marker.value.value == b"\x0c" + bytes((len(value),)) + value

    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical
    assert key_usage.value.digital_signature
    assert not key_usage.value.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)

    now = datetime.now(UTC)
    assert now - timedelta(days=2) < cert.not_valid_before_utc < now
    assert now + timedelta(days=700) < cert.not_valid_after_utc < now + timedelta(days=740)


def test_certificate_authorities(dev_chain: DevChain) -> None:
    root = load(dev_chain.root_certificate)
    wwdr = load(dev_chain.wwdr_certificate)

    assert subject(root, NameOID.COMMON_NAME) == "loyalpass development root"
    assert root.issuer == root.subject
    root.verify_directly_issued_by(root)
    root_constraints = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert root_constraints.critical
    assert root_constraints.value.ca
    root_usage = root.extensions.get_extension_for_class(x509.KeyUsage).value
    assert root_usage.key_cert_sign
    assert root_usage.crl_sign

    assert subject(wwdr, NameOID.COMMON_NAME) == "loyalpass development WWDR G4-like intermediate"
    assert subject(wwdr, NameOID.ORGANIZATIONAL_UNIT_NAME) == "G4"
    wwdr.verify_directly_issued_by(root)
    wwdr_constraints = wwdr.extensions.get_extension_for_class(x509.BasicConstraints)
    assert wwdr_constraints.critical
    assert wwdr_constraints.value.ca
    assert wwdr_constraints.value.path_length == 0
    assert wwdr.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign

    for ca in (root, wwdr):
        lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
        assert lifetime >= timedelta(days=3650)


def test_openssl_verifies_chain(dev_chain: DevChain, openssl: str) -> None:
    result = subprocess.run(
        [
            openssl,
            "verify",
            "-CAfile",
            str(dev_chain.root_certificate),
            "-untrusted",
            str(dev_chain.wwdr_certificate),
            str(dev_chain.certificate),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": OK")


def test_custom_organization_is_not_development(dev_chain: DevChain, tmp_path: Path) -> None:
    assert is_development_certificate(load(dev_chain.certificate))
    # Also: a key file left with a lax mode by someone else must end up 0600.
    (tmp_path / "pass.key").write_text("old")
    (tmp_path / "pass.key").chmod(0o644)

    other = create_dev_chain(
        tmp_path,
        pass_type_identifier="pass.example.shop",
        team_identifier="ABCDE12345",
        organization="Example Shop",
    )
    cert = load(other.certificate)
    assert subject(cert, NameOID.ORGANIZATION_NAME) == "Example Shop"
    assert not is_development_certificate(cert)
    assert stat.S_IMODE(other.private_key.stat().st_mode) == 0o600


def test_encrypted_key_and_p12(tmp_path: Path) -> None:
    not_before = datetime(2024, 1, 1, tzinfo=UTC)
    not_after = datetime(2025, 1, 1, tzinfo=UTC)
    chain = create_dev_chain(
        tmp_path,
        pass_type_identifier="pass.dev.loyalpass.p12",
        team_identifier="LPTEST0002",
        not_before=not_before,
        not_after=not_after,
        key_password=b"key secret",
        write_p12=True,
        p12_password=b"p12 secret",
    )
    cert = load(chain.certificate)
    assert cert.not_valid_before_utc == not_before
    assert cert.not_valid_after_utc == not_after

    pem = chain.private_key.read_bytes()
    assert pem.startswith(PEM_HEADER % b"ENCRYPTED PRIVATE KEY")
    key = serialization.load_pem_private_key(pem, password=b"key secret")
    assert key.public_key() == cert.public_key()

    assert chain.p12 == tmp_path / "pass.p12"
    assert stat.S_IMODE(chain.p12.stat().st_mode) == 0o600
    p12_key, p12_cert, extra = pkcs12.load_key_and_certificates(
        chain.p12.read_bytes(), b"p12 secret"
    )
    assert p12_cert == cert
    assert p12_key is not None
    assert p12_key.public_key() == cert.public_key()
    assert extra == []
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(chain.p12.read_bytes(), None)


def test_rejects_bad_validity_window(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        create_dev_chain(
            tmp_path,
            pass_type_identifier="pass.x",
            team_identifier="T",
            not_after=datetime(2030, 1, 1),  # noqa: DTZ001
        )
    with pytest.raises(ValueError, match="later"):
        create_dev_chain(
            tmp_path,
            pass_type_identifier="pass.x",
            team_identifier="T",
            not_before=datetime(2030, 1, 1, tzinfo=UTC),
            not_after=datetime(2029, 1, 1, tzinfo=UTC),
        )
