"""Detached CMS (PKCS#7) signature over a pass manifest, as Apple Wallet requires.

Every pass download signs a fresh manifest, so the signer is on the hot path. Nearly all of
the CMS structure is identical from call to call; PassSigner encodes it once and per call
only hashes the manifest, formats signingTime, signs, and concatenates bytes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from passes.wallet.apple.certificates import SigningMaterial

# DER encodings of the object identifiers (tag + length + value).
_OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")  # 1.2.840.113549.1.7.2
_OID_DATA = bytes.fromhex("06092a864886f70d010701")  # 1.2.840.113549.1.7.1
_OID_CONTENT_TYPE = bytes.fromhex("06092a864886f70d010903")  # 1.2.840.113549.1.9.3
_OID_MESSAGE_DIGEST = bytes.fromhex("06092a864886f70d010904")  # 1.2.840.113549.1.9.4
_OID_SIGNING_TIME = bytes.fromhex("06092a864886f70d010905")  # 1.2.840.113549.1.9.5
_OID_SHA256 = bytes.fromhex("0609608648016503040201")  # 2.16.840.1.101.3.4.2.1
_OID_RSA_ENCRYPTION = bytes.fromhex("06092a864886f70d010101")  # 1.2.840.113549.1.1.1
_OID_ECDSA_WITH_SHA256 = bytes.fromhex("06082a8648ce3d040302")  # 1.2.840.10045.4.3.2

_NULL = b"\x05\x00"
_INTEGER_1 = b"\x02\x01\x01"

_SEQUENCE = 0x30
_SET = 0x31
_OCTET_STRING = 0x04
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
_CONTEXT_0 = 0xA0  # [0], constructed


def _length(n: int) -> bytes:
    """DER definite length octets."""
    if n < 0x80:
        return bytes((n,))
    size = (n.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


def _header(tag: int, length: int) -> bytes:
    """Identifier and length octets for a single-byte tag (all that CMS needs here)."""
    return bytes((tag,)) + _length(length)


def _tlv(tag: int, content: bytes) -> bytes:
    return _header(tag, len(content)) + content


def _read_tlv(data: bytes, offset: int) -> tuple[int, int]:
    """Return (content start, end) of the DER element at offset. Used once, in __init__."""
    if data[offset] & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags are not expected in a certificate")
    first = data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        size = first & 0x7F
        if size == 0 or size > 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[start : start + size], "big")
        start += size
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER")
    return start, end


def _issuer_and_serial(certificate_der: bytes) -> bytes:
    """IssuerAndSerialNumber, copied byte for byte from the certificate.

    Verifiers match the signer by these bytes, so they are not re-encoded from the parsed
    Name (which could differ for unusual string types).
    """
    cert_start, _ = _read_tlv(certificate_der, 0)
    tbs_start, _ = _read_tlv(certificate_der, cert_start)
    position = tbs_start
    if certificate_der[position] == _CONTEXT_0:  # explicit version
        position = _read_tlv(certificate_der, position)[1]
    serial_end = _read_tlv(certificate_der, position)[1]  # serialNumber INTEGER
    serial = certificate_der[position:serial_end]
    algorithm_end = _read_tlv(certificate_der, serial_end)[1]  # signature AlgorithmIdentifier
    issuer_end = _read_tlv(certificate_der, algorithm_end)[1]
    issuer = certificate_der[algorithm_end:issuer_end]
    return _tlv(_SEQUENCE, issuer + serial)


def _attribute_prefix(oid: bytes, value_tag: int, value_length: int) -> bytes:
    """Bytes of `SEQUENCE { oid, SET { value } }` up to the value's content."""
    value_header = bytes((value_tag, value_length))
    attr_values_length = len(value_header) + value_length
    set_header = bytes((_SET, attr_values_length))
    total = len(oid) + len(set_header) + attr_values_length
    assert total < 0x80
    return bytes((_SEQUENCE, total)) + oid + set_header + value_header


_CONTENT_TYPE_ATTRIBUTE = _tlv(_SEQUENCE, _OID_CONTENT_TYPE + _tlv(_SET, _OID_DATA))
_UTC_TIME_PREFIX = _attribute_prefix(_OID_SIGNING_TIME, _UTC_TIME, 13)
_GENERALIZED_TIME_PREFIX = _attribute_prefix(_OID_SIGNING_TIME, _GENERALIZED_TIME, 15)
_MESSAGE_DIGEST_PREFIX = _attribute_prefix(_OID_MESSAGE_DIGEST, _OCTET_STRING, 32)

# DER orders a SET OF by the elements' encodings. Each attribute has a fixed length
# (digest is always 32 bytes, the time 13 or 15 characters), and the second byte (the
# length) already differs, so the order below holds for every manifest and time.
assert (
    _CONTENT_TYPE_ATTRIBUTE[:2]
    < _UTC_TIME_PREFIX[:2]
    < _GENERALIZED_TIME_PREFIX[:2]
    < _MESSAGE_DIGEST_PREFIX[:2]
)


def _signing_time(when: datetime) -> bytes:
    """signingTime attribute; RFC 5652 demands UTCTime for 1950-2049."""
    year = when.year
    rest = (when.month, when.day, when.hour, when.minute, when.second)
    if 1950 <= year < 2050:
        return _UTC_TIME_PREFIX + b"%02d%02d%02d%02d%02d%02dZ" % (year % 100, *rest)
    return _GENERALIZED_TIME_PREFIX + b"%04d%02d%02d%02d%02d%02dZ" % (year, *rest)


class PassSigner:
    """Signs manifests with one certificate and key; build once, call sign() many times."""

    def __init__(self, material: SigningMaterial) -> None:
        der = serialization.Encoding.DER
        certificate_der = material.certificate.public_bytes(der)
        wwdr_der = material.wwdr.public_bytes(der)
        sha256 = _tlv(_SEQUENCE, _OID_SHA256 + _NULL)

        key = material.private_key
        if isinstance(key, rsa.RSAPrivateKey):
            rsa_key = key
            pkcs1v15, sha256_hash = padding.PKCS1v15(), hashes.SHA256()
            signature_algorithm = _tlv(_SEQUENCE, _OID_RSA_ENCRYPTION + _NULL)

            def raw_sign(data: bytes) -> bytes:
                return rsa_key.sign(data, pkcs1v15, sha256_hash)

        elif isinstance(key, ec.EllipticCurvePrivateKey):
            ec_key = key
            ecdsa = ec.ECDSA(hashes.SHA256())
            signature_algorithm = _tlv(_SEQUENCE, _OID_ECDSA_WITH_SHA256)

            def raw_sign(data: bytes) -> bytes:
                return ec_key.sign(data, ecdsa)

        else:  # pragma: no cover - SigningMaterial's type already excludes this
            raise TypeError(f"unsupported private key type {type(key).__name__}")

        self._raw_sign: Callable[[bytes], bytes] = raw_sign
        self._signature_algorithm = signature_algorithm
        # SignerInfo fields before signedAttrs: version 1, sid, digestAlgorithm.
        self._signer_info_head = _INTEGER_1 + _issuer_and_serial(certificate_der) + sha256
        # SignedData fields before signerInfos. certificates is a SET OF, so DER sorts it.
        self._signed_data_head = (
            _INTEGER_1
            + _tlv(_SET, sha256)
            + _tlv(_SEQUENCE, _OID_DATA)
            + _tlv(_CONTEXT_0, b"".join(sorted((certificate_der, wwdr_der))))
        )
        # Everything in front of the SignerInfo's content depends only on its length, which
        # takes a handful of values (time form x signature length), so it is cached.
        self._prefixes: dict[int, bytes] = {}
        # signingTime attribute of the current second; a single tuple, so a racing thread
        # sees either the old or the new pair, never a mix.
        self._current_time: tuple[int, bytes] = (-1, b"")

    def sign(self, manifest: bytes, signing_time: datetime | None = None) -> bytes:
        """DER ContentInfo(SignedData) signing exactly `manifest`, detached.

        `signing_time` must be timezone-aware; it defaults to now and is truncated to
        seconds. Wallet rejects signatures without it.
        """
        if signing_time is None:
            second = int(time.time())
            cached_second, time_attribute = self._current_time
            if second != cached_second:
                time_attribute = _signing_time(datetime.fromtimestamp(second, UTC))
                self._current_time = (second, time_attribute)
        elif signing_time.utcoffset() is None:
            raise ValueError("signing_time must be timezone-aware")
        else:
            time_attribute = _signing_time(signing_time.astimezone(UTC))

        attributes = b"".join(
            (
                _CONTENT_TYPE_ATTRIBUTE,
                time_attribute,
                _MESSAGE_DIGEST_PREFIX,
                hashlib.sha256(manifest).digest(),
            )
        )
        attributes_length = _length(len(attributes))
        # The signature covers the attributes as a SET (0x31); SignerInfo stores the same
        # content under the implicit [0] tag.
        signature = self._raw_sign(b"\x31" + attributes_length + attributes)
        signature_value = _tlv(_OCTET_STRING, signature)

        signer_info_length = (
            len(self._signer_info_head)
            + 1
            + len(attributes_length)
            + len(attributes)
            + len(self._signature_algorithm)
            + len(signature_value)
        )
        prefix = self._prefixes.get(signer_info_length) or self._prefix(signer_info_length)
        return b"".join(
            (
                prefix,
                self._signer_info_head,
                b"\xa0",
                attributes_length,
                attributes,
                self._signature_algorithm,
                signature_value,
            )
        )

    def _prefix(self, signer_info_length: int) -> bytes:
        """ContentInfo .. SignedData .. signerInfos headers, up to the SignerInfo content."""
        signer_info_header = _header(_SEQUENCE, signer_info_length)
        signer_infos_length = len(signer_info_header) + signer_info_length
        signer_infos_header = _header(_SET, signer_infos_length)
        signed_data_length = (
            len(self._signed_data_head) + len(signer_infos_header) + signer_infos_length
        )
        signed_data_header = _header(_SEQUENCE, signed_data_length)
        explicit_length = len(signed_data_header) + signed_data_length
        explicit_header = _header(_CONTEXT_0, explicit_length)
        content_info_length = len(_OID_SIGNED_DATA) + len(explicit_header) + explicit_length
        prefix = b"".join(
            (
                _header(_SEQUENCE, content_info_length),
                _OID_SIGNED_DATA,
                explicit_header,
                signed_data_header,
                self._signed_data_head,
                signer_infos_header,
                signer_info_header,
            )
        )
        self._prefixes[signer_info_length] = prefix
        return prefix


def reference_sign(material: SigningMaterial, manifest: bytes) -> bytes:
    """Same signature through cryptography's PKCS#7 builder, for tests and benchmarks."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(manifest)
        .add_signer(material.certificate, material.private_key, hashes.SHA256())
        .add_certificate(material.wwdr)
        .sign(
            serialization.Encoding.DER,
            [
                pkcs7.PKCS7Options.Binary,
                pkcs7.PKCS7Options.DetachedSignature,
                pkcs7.PKCS7Options.NoCapabilities,
            ],
        )
    )
