"""Load the Apple pass signing certificate, key and WWDR intermediate, and check them.

Misconfigured signing material does not fail loudly: Wallet silently refuses the pass on
the device. So everything that can be checked on the server is checked at startup, and
each error names the setting to fix, on one line, so it reads well in logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from passes.wallet.apple.devcerts import DevChain, is_development_certificate

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class CertificateError(Exception):
    """Signing material is unusable; str() is one line starting with the setting to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


@dataclass(frozen=True)
class SigningMaterial:
    certificate: x509.Certificate
    private_key: SigningKey
    wwdr: x509.Certificate
    pass_type_identifier: str
    team_identifier: str
    is_development: bool
    # Where each part came from, e.g. "APPLE_P12 (/etc/loyalpass/pass.p12)"; only used
    # to make error messages point at the right setting and file.
    certificate_source: str = "APPLE_CERTIFICATE"
    private_key_source: str = "APPLE_PRIVATE_KEY"
    wwdr_source: str = "APPLE_WWDR_CERTIFICATE"


def load_signing_material(
    *,
    certificate: Path | None,
    private_key: Path | None,
    private_key_password: str | None,
    p12: Path | None,
    p12_password: str | None,
    wwdr: Path,
) -> SigningMaterial:
    """Load from a .p12 bundle if given, otherwise from a certificate and key file."""
    if p12 is not None:
        source = _source("APPLE_P12", p12)
        cert, key = _load_p12(p12, p12_password)
        cert_source = key_source = source
    else:
        if certificate is None:
            raise CertificateError(
                "APPLE_CERTIFICATE is not set; "
                "set APPLE_CERTIFICATE and APPLE_PRIVATE_KEY, or APPLE_P12"
            )
        if private_key is None:
            raise CertificateError(
                "APPLE_PRIVATE_KEY is not set; it is needed with APPLE_CERTIFICATE"
            )
        cert_source = _source("APPLE_CERTIFICATE", certificate)
        key_source = _source("APPLE_PRIVATE_KEY", private_key)
        cert = _load_certificate("APPLE_CERTIFICATE", certificate)
        key = _load_private_key(private_key, private_key_password)

    wwdr_cert = _load_certificate("APPLE_WWDR_CERTIFICATE", wwdr)
    return SigningMaterial(
        certificate=cert,
        private_key=key,
        wwdr=wwdr_cert,
        pass_type_identifier=_subject_value(cert, NameOID.USER_ID, "UID", cert_source),
        team_identifier=_subject_value(cert, NameOID.ORGANIZATIONAL_UNIT_NAME, "OU", cert_source),
        is_development=is_development_certificate(cert),
        certificate_source=cert_source,
        private_key_source=key_source,
        wwdr_source=_source("APPLE_WWDR_CERTIFICATE", wwdr),
    )


def load_dev_chain_material(chain: DevChain) -> SigningMaterial:
    """A development chain's material, loaded exactly as configured material is."""
    return load_signing_material(
        certificate=chain.certificate,
        private_key=chain.private_key,
        private_key_password=None,
        p12=None,
        p12_password=None,
        wwdr=chain.wwdr_certificate,
    )


def check_signing_material(
    material: SigningMaterial,
    *,
    pass_type_identifier: str,
    team_identifier: str,
    now: datetime,
) -> None:
    """Raise CertificateError for anything that would make Wallet reject signed passes."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    cert = material.certificate
    cert_source = material.certificate_source

    if _public_key_der(material.private_key) != _public_key_der(cert):
        if material.private_key_source == cert_source:
            raise CertificateError(f"{cert_source}: the private key does not match the certificate")
        raise CertificateError(
            f"{material.private_key_source} does not match the certificate in {cert_source}"
        )

    _check_validity(cert, cert_source, now)
    _check_validity(material.wwdr, material.wwdr_source, now)

    if not pass_type_identifier:
        raise CertificateError(
            "APPLE_PASS_TYPE_IDENTIFIER is not set; "
            f'the certificate\'s UID is "{material.pass_type_identifier}"'
        )
    if not team_identifier:
        raise CertificateError(
            "APPLE_TEAM_IDENTIFIER is not set; "
            f'the certificate\'s OU is "{material.team_identifier}"'
        )
    if material.pass_type_identifier != pass_type_identifier:
        raise CertificateError(
            f'APPLE_PASS_TYPE_IDENTIFIER is "{pass_type_identifier}" but the certificate\'s UID '
            f'is "{material.pass_type_identifier}" ({cert_source})'
        )
    if material.team_identifier != team_identifier:
        raise CertificateError(
            f'APPLE_TEAM_IDENTIFIER is "{team_identifier}" but the certificate\'s OU '
            f'is "{material.team_identifier}" ({cert_source})'
        )

    wwdr = material.wwdr
    if cert.issuer != wwdr.subject:
        raise CertificateError(
            f"{material.wwdr_source} did not issue the certificate in {cert_source}: "
            f'it is "{wwdr.subject.rfc4514_string()}" but the certificate was issued by '
            f'"{cert.issuer.rfc4514_string()}"'
        )
    try:
        cert.verify_directly_issued_by(wwdr)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
        raise CertificateError(
            f"{material.wwdr_source} did not issue the certificate in {cert_source}: "
            f"the names match but the signature does not verify ({type(exc).__name__})"
        ) from exc


def _source(setting: str, path: Path) -> str:
    return f"{setting} ({path})"


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertificateError(f"{_source(setting, path)} does not exist") from None
    except OSError as exc:
        raise CertificateError(
            f"{_source(setting, path)} cannot be read: {exc.strerror or exc}"
        ) from None


def _load_certificate(setting: str, path: Path) -> x509.Certificate:
    """PEM or DER: Apple hands out .cer files in DER, people convert them to PEM."""
    data = _read(setting, path)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise CertificateError(
            f"{_source(setting, path)} is not a PEM or DER X.509 certificate"
        ) from None


def _load_private_key(path: Path, password: str | None) -> SigningKey:
    source = _source("APPLE_PRIVATE_KEY", path)
    data = _read("APPLE_PRIVATE_KEY", path)
    encrypted = b"ENCRYPTED" in data
    if encrypted and not password:
        raise CertificateError(f"APPLE_PRIVATE_KEY_PASSWORD is not set but {source} is encrypted")
    if password and not encrypted:
        raise CertificateError(f"APPLE_PRIVATE_KEY_PASSWORD is set but {source} is not encrypted")
    try:
        key = serialization.load_pem_private_key(
            data, password.encode("utf-8") if password else None
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if encrypted:
            raise CertificateError(
                f"APPLE_PRIVATE_KEY_PASSWORD is wrong: it does not decrypt {source}"
            ) from None
        raise CertificateError(f"{source} is not a PEM private key") from None
    return _signing_key(key, source)


def _load_p12(path: Path, password: str | None) -> tuple[x509.Certificate, SigningKey]:
    source = _source("APPLE_P12", path)
    data = _read("APPLE_P12", path)
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(
            data, password.encode("utf-8") if password else None
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # OpenSSL cannot tell a wrong password from a corrupt file; a PKCS#12 file is a
        # DER SEQUENCE, so anything else is certainly not one.
        if not data.startswith(b"\x30"):
            raise CertificateError(f"{source} is not a PKCS#12 (.p12) file") from None
        if not password:
            raise CertificateError(
                f"APPLE_P12_PASSWORD is not set but {source} needs a password"
            ) from None
        raise CertificateError(f"APPLE_P12_PASSWORD is wrong: it does not open {source}") from None
    if cert is None:
        raise CertificateError(f"{source} contains no certificate")
    if key is None:
        raise CertificateError(f"{source} contains no private key")
    return cert, _signing_key(key, source)


def _signing_key(key: object, source: str) -> SigningKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key
    raise CertificateError(
        f"{source} holds a {type(key).__name__}; pass signing needs an RSA or EC key"
    )


def _subject_value(
    cert: x509.Certificate, oid: x509.ObjectIdentifier, name: str, source: str
) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    if not values:
        raise CertificateError(
            f"{source} has no {name} in its subject; is it a Pass Type ID certificate?"
        )
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _public_key_der(holder: SigningKey | x509.Certificate) -> bytes:
    return holder.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_validity(cert: x509.Certificate, source: str, now: datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise CertificateError(
            f"{source} is not valid before {_timestamp(cert.not_valid_before_utc)}"
        )
    if now > cert.not_valid_after_utc:
        raise CertificateError(f"{source} expired on {_timestamp(cert.not_valid_after_utc)}")


def _timestamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
