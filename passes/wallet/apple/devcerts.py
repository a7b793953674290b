"""Development certificate chain that mimics Apple's pass signing hierarchy.

Lets developers and tests sign passes without an Apple account: the chain has the same
shape as Apple's (root -> WWDR intermediate -> Pass Type ID certificate), so the signing
and checking code paths are exercised unchanged. Wallet on a real device rejects it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID, ObjectIdentifier

DEVELOPMENT_ORGANIZATION = "loyalpass development"
ROOT_COMMON_NAME = "loyalpass development root"
WWDR_COMMON_NAME = "loyalpass development WWDR G4-like intermediate"
PASS_TYPE_ID_EXTENSION_OID = ObjectIdentifier("1.2.840.113635.100.6.1.16")

_CA_LIFETIME = timedelta(days=3650)


@dataclass(frozen=True)
class DevChain:
    root_certificate: Path
    wwdr_certificate: Path
    certificate: Path
    private_key: Path
    p12: Path | None
    pass_type_identifier: str
    team_identifier: str


def create_dev_chain(
    directory: Path,
    *,
    pass_type_identifier: str,
    team_identifier: str,
    organization: str = DEVELOPMENT_ORGANIZATION,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key_password: bytes | None = None,
    write_p12: bool = False,
    p12_password: bytes | None = None,
) -> DevChain:
    """Create root, WWDR-like intermediate and pass certificate; write them to `directory`.

    The validity window applies to the pass certificate only, so tests can make it expired
    or not yet valid. The CAs always cover it (and at least ten years), so a broken chain
    never masks the condition under test. The root key is discarded: nothing can be
    issued under the development root after this call.
    """
    now = datetime.now(UTC)
    pass_not_before = _aware(not_before, "not_before") or now - timedelta(days=1)
    pass_not_after = _aware(not_after, "not_after") or now + timedelta(days=730)
    if pass_not_after <= pass_not_before:
        raise ValueError("not_after must be later than not_before")
    ca_not_before = min(now - timedelta(days=1), pass_not_before)
    ca_not_after = max(ca_not_before + _CA_LIFETIME, pass_not_after)

    root_key = _new_key()
    root_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, ROOT_COMMON_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    root = (
        _builder(root_name, root_name, root_key, ca_not_before, ca_not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .sign(root_key, hashes.SHA256())
    )

    wwdr_key = _new_key()
    wwdr_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, WWDR_COMMON_NAME),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "G4"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    wwdr = (
        _builder(wwdr_name, root_name, wwdr_key, ca_not_before, ca_not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(_authority_key_id(root_key), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    pass_key = _new_key()
    pass_name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, pass_type_identifier),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {pass_type_identifier}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team_identifier),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    # No extendedKeyUsage: Apple's pass EKU would make `openssl smime -verify` refuse the
    # certificate for S/MIME signing, and nothing in our path needs it.
    certificate = (
        _builder(pass_name, wwdr_name, pass_key, pass_not_before, pass_not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_authority_key_id(wwdr_key), critical=False)
        .add_extension(
            x509.UnrecognizedExtension(
                PASS_TYPE_ID_EXTENSION_OID, _der_utf8string(pass_type_identifier)
            ),
            critical=False,
        )
        .sign(wwdr_key, hashes.SHA256())
    )

    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    root_path = directory / "dev-root.pem"
    wwdr_path = directory / "wwdr.pem"
    cert_path = directory / "pass.pem"
    key_path = directory / "pass.key"
    root_path.write_bytes(root.public_bytes(pem))
    wwdr_path.write_bytes(wwdr.public_bytes(pem))
    cert_path.write_bytes(certificate.public_bytes(pem))
    _write_secret(
        key_path,
        pass_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, _encryption(key_password)),
    )

    p12_path: Path | None = None
    if write_p12:
        p12_path = directory / "pass.p12"
        _write_secret(
            p12_path,
            pkcs12.serialize_key_and_certificates(
                b"loyalpass development pass",
                pass_key,
                certificate,
                None,
                _encryption(p12_password),
            ),
        )

    return DevChain(
        root_certificate=root_path,
        wwdr_certificate=wwdr_path,
        certificate=cert_path,
        private_key=key_path,
        p12=p12_path,
        pass_type_identifier=pass_type_identifier,
        team_identifier=team_identifier,
    )


def is_development_certificate(cert: x509.Certificate) -> bool:
    """True for certificates made by create_dev_chain with the default organization."""
    return any(
        attribute.value == DEVELOPMENT_ORGANIZATION
        for attribute in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    )


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: rsa.RSAPrivateKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(issuer_key: rsa.RSAPrivateKey) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())


def _der_utf8string(value: str) -> bytes:
    data = value.encode("utf-8")
    n = len(data)
    if n < 0x80:
        return b"\x0c" + bytes((n,)) + data
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\x0c" + bytes((0x80 | len(length),)) + length + data


def _encryption(password: bytes | None) -> serialization.KeySerializationEncryption:
    if password:
        return serialization.BestAvailableEncryption(password)
    return serialization.NoEncryption()


def _write_secret(path: Path, data: bytes) -> None:
    """Write with mode 0600 from the first byte on; never briefly world-readable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is ignored when the file already exists
        file.write(data)
