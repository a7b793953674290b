from __future__ import annotations

import hashlib
import subprocess
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from passes.wallet.apple.certificates import SigningMaterial
from passes.wallet.apple.devcerts import DevChain
from passes.wallet.apple.signature import PassSigner, reference_sign

MANIFEST = b'{"pass.json":"0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33"}\n'

OID_SIGNING_TIME = bytes.fromhex("2a864886f70d010905")
OID_MESSAGE_DIGEST = bytes.fromhex("2a864886f70d010904")
OID_CONTENT_TYPE = bytes.fromhex("2a864886f70d010903")
OID_DATA = bytes.fromhex("2a864886f70d010701")
OID_SHA256 = bytes.fromhex("608648016503040201")
OID_RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")
OID_ECDSA_WITH_SHA256 = bytes.fromhex("2a8648ce3d040302")


# --- a minimal DER reader, independent of the code under test -----------------------------


def elements(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """Split concatenated DER elements into (tag, content, whole encoding)."""
    result = []
    i = 0
    while i < len(data):
        tag, length, j = data[i], data[i + 1], i + 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(data[j : j + size], "big")
            j += size
        result.append((tag, data[j : j + length], data[i : j + length]))
        i = j + length
    assert i == len(data)
    return result


def only(data: bytes) -> tuple[int, bytes]:
    [(tag, content, _)] = elements(data)
    return tag, content


def signed_data_fields(signature: bytes) -> list[tuple[int, bytes, bytes]]:
    tag, content_info = only(signature)
    assert tag == 0x30
    (oid_tag, oid, _), (explicit_tag, explicit, _) = elements(content_info)
    assert (oid_tag, oid, explicit_tag) == (0x06, bytes.fromhex("2a864886f70d010702"), 0xA0)
    tag, signed_data = only(explicit)
    assert tag == 0x30
    return elements(signed_data)


def signer_info_fields(signature: bytes) -> list[tuple[int, bytes, bytes]]:
    tag, signer_infos = signed_data_fields(signature)[-1][:2]
    assert tag == 0x31
    tag, signer_info = only(signer_infos)
    assert tag == 0x30
    return elements(signer_info)


def signed_attributes(signature: bytes) -> dict[bytes, tuple[int, bytes]]:
    tag, attributes, _ = signer_info_fields(signature)[3]
    assert tag == 0xA0
    result = {}
    for _, attribute, _ in elements(attributes):
        (_, oid, _), (set_tag, values, _) = elements(attribute)
        assert set_tag == 0x31
        result[oid] = only(values)
    return result


# --- helpers ------------------------------------------------------------------------------


def openssl_verify(
    openssl: str,
    tmp_path: Path,
    signature: bytes,
    manifest: bytes,
    ca_file: Path,
    command: str = "smime",
) -> subprocess.CompletedProcess[str]:
    signature_path = tmp_path / "signature"
    manifest_path = tmp_path / "manifest.json"
    signature_path.write_bytes(signature)
    manifest_path.write_bytes(manifest)
    return subprocess.run(
        [
            openssl,
            command,
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(signature_path),
            "-content",
            str(manifest_path),
            "-CAfile",
            str(ca_file),
            "-out",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def openssl_print(openssl: str, tmp_path: Path, signature: bytes) -> str:
    signature_path = tmp_path / "signature-to-print"
    signature_path.write_bytes(signature)
    return subprocess.run(
        [openssl, "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(signature_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture(scope="module")
def signer(signing_material: SigningMaterial) -> PassSigner:
    return PassSigner(signing_material)


@pytest.fixture(scope="module")
def ec_chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningMaterial, Path]:
    """EC P-256 CA + pass certificate; the CA plays the WWDR role and is the trust anchor."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loyalpass test EC CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.USER_ID, "pass.dev.loyalpass.ec"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "LPTEST0001"),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp_path_factory.mktemp("ec-chain") / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    material = SigningMaterial(
        certificate=certificate,
        private_key=key,
        wwdr=ca,
        pass_type_identifier="pass.dev.loyalpass.ec",
        team_identifier="LPTEST0001",
        is_development=True,
    )
    return material, ca_file


# --- verification with openssl ------------------------------------------------------------


@pytest.mark.parametrize("command", ["smime", "cms"])
def test_openssl_verifies_signature(
    signer: PassSigner, dev_chain: DevChain, openssl: str, tmp_path: Path, command: str
) -> None:
    result = openssl_verify(
        openssl,
        tmp_path,
        signer.sign(MANIFEST),
        MANIFEST,
        dev_chain.root_certificate,
        command,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "manifest",
    [b"", b"line one\nline two\n", b"crlf\r\nand lone cr\r", bytes(range(256)) * 64],
    ids=["empty", "newlines", "carriage-returns", "binary-16k"],
)
def test_binary_manifests_verify(
    signer: PassSigner, dev_chain: DevChain, openssl: str, tmp_path: Path, manifest: bytes
) -> None:
    result = openssl_verify(
        openssl, tmp_path, signer.sign(manifest), manifest, dev_chain.root_certificate
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("position", [0, len(MANIFEST) // 2, len(MANIFEST) - 1])
def test_tampered_manifest_fails(
    signer: PassSigner, dev_chain: DevChain, openssl: str, tmp_path: Path, position: int
) -> None:
    tampered = bytearray(MANIFEST)
    tampered[position] ^= 0x01
    result = openssl_verify(
        openssl, tmp_path, signer.sign(MANIFEST), bytes(tampered), dev_chain.root_certificate
    )
    assert result.returncode != 0


def test_other_trust_anchor_fails(
    signer: PassSigner, ec_chain: tuple[SigningMaterial, Path], openssl: str, tmp_path: Path
) -> None:
    _, other_ca = ec_chain
    result = openssl_verify(openssl, tmp_path, signer.sign(MANIFEST), MANIFEST, other_ca)
    assert result.returncode != 0


@pytest.mark.parametrize("year", [2050, 1949])
def test_generalized_time_outside_utctime_range_verifies(
    signer: PassSigner, dev_chain: DevChain, openssl: str, tmp_path: Path, year: int
) -> None:
    when = datetime(year, 6, 7, 8, 9, 10, tzinfo=UTC)
    signature = signer.sign(MANIFEST, when)

    assert signed_attributes(signature)[OID_SIGNING_TIME] == (0x18, b"%d0607080910Z" % year)
    assert f"GENERALIZEDTIME:Jun  7 08:09:10 {year} GMT" in openssl_print(
        openssl, tmp_path, signature
    )
    result = openssl_verify(openssl, tmp_path, signature, MANIFEST, dev_chain.root_certificate)
    assert result.returncode == 0, result.stderr


def test_ec_key_signature_verifies(
    ec_chain: tuple[SigningMaterial, Path], openssl: str, tmp_path: Path
) -> None:
    material, ca_file = ec_chain
    signature = PassSigner(material).sign(MANIFEST)

    algorithm = signer_info_fields(signature)[4][1]
    assert only(algorithm) == (0x06, OID_ECDSA_WITH_SHA256)  # parameters absent (RFC 5758)
    for command in ("smime", "cms"):
        result = openssl_verify(openssl, tmp_path, signature, MANIFEST, ca_file, command)
        assert result.returncode == 0, result.stderr


def test_reference_signature_verifies(
    signing_material: SigningMaterial, dev_chain: DevChain, openssl: str, tmp_path: Path
) -> None:
    signature = reference_sign(signing_material, MANIFEST)
    result = openssl_verify(openssl, tmp_path, signature, MANIFEST, dev_chain.root_certificate)
    assert result.returncode == 0, result.stderr


# --- structure ----------------------------------------------------------------------------


def test_byte_identical_to_reference_for_same_signing_time(
    signer: PassSigner, signing_material: SigningMaterial
) -> None:
    """PKCS#1 v1.5 is deterministic, so the only freedom is signingTime; take the library's."""
    reference = reference_sign(signing_material, MANIFEST)
    tag, utc_time = signed_attributes(reference)[OID_SIGNING_TIME]
    assert tag == 0x17
    when = datetime.strptime(utc_time.decode(), "%y%m%d%H%M%SZ").replace(tzinfo=UTC)

    assert signer.sign(MANIFEST, when) == reference


def test_signing_time_is_the_given_time(signer: PassSigner, openssl: str, tmp_path: Path) -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)
    signature = signer.sign(MANIFEST, when)

    assert signed_attributes(signature)[OID_SIGNING_TIME] == (0x17, b"240102030405Z")
    assert "UTCTIME:Jan  2 03:04:05 2024 GMT" in openssl_print(openssl, tmp_path, signature)


def test_signing_time_is_converted_to_utc(signer: PassSigner) -> None:
    when = datetime(2024, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    signature = signer.sign(MANIFEST, when)
    assert signed_attributes(signature)[OID_SIGNING_TIME] == (0x17, b"231231233000Z")


def test_signing_time_defaults_to_now(signer: PassSigner) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    signature = signer.sign(MANIFEST)
    after = datetime.now(UTC)

    tag, value = signed_attributes(signature)[OID_SIGNING_TIME]
    assert tag == 0x17
    signed_at = datetime.strptime(value.decode(), "%y%m%d%H%M%SZ").replace(tzinfo=UTC)
    assert before <= signed_at <= after


def test_naive_signing_time_is_rejected(signer: PassSigner) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        signer.sign(MANIFEST, datetime(2024, 1, 1))  # noqa: DTZ001


def test_signed_attributes(signer: PassSigner) -> None:
    signature = signer.sign(MANIFEST, datetime(2024, 1, 2, tzinfo=UTC))
    attributes = signed_attributes(signature)

    assert set(attributes) == {OID_CONTENT_TYPE, OID_SIGNING_TIME, OID_MESSAGE_DIGEST}
    assert attributes[OID_CONTENT_TYPE] == (0x06, OID_DATA)
    assert attributes[OID_MESSAGE_DIGEST] == (0x04, hashlib.sha256(MANIFEST).digest())


@pytest.mark.parametrize("year", [2024, 2050])
def test_signed_attributes_are_in_der_set_order(signer: PassSigner, year: int) -> None:
    signature = signer.sign(MANIFEST, datetime(year, 12, 31, 23, 59, 59, tzinfo=UTC))
    encodings = [whole for _, _, whole in elements(signer_info_fields(signature)[3][1])]
    assert encodings == sorted(encodings)


def test_signed_data_fields(
    signer: PassSigner, signing_material: SigningMaterial, openssl: str, tmp_path: Path
) -> None:
    signature = signer.sign(MANIFEST)
    version, digest_algorithms, encapsulated, certificates, signer_infos = signed_data_fields(
        signature
    )
    sha256 = b"\x30\x0d\x06\x09" + OID_SHA256 + b"\x05\x00"

    assert version[:2] == (0x02, b"\x01")
    assert digest_algorithms[:2] == (0x31, sha256)
    assert encapsulated[:2] == (0x30, b"\x06\x09" + OID_DATA)  # detached: no eContent
    assert certificates[0] == 0xA0
    assert signer_infos[0] == 0x31

    printed = openssl_print(openssl, tmp_path, signature)
    assert "algorithm: sha256 (2.16.840.1.101.3.4.2.1)" in printed
    assert "crls:\n      <ABSENT>" in printed
    assert "eContent: <ABSENT>" in printed


def test_signer_info_fields(signer: PassSigner, signing_material: SigningMaterial) -> None:
    signature = signer.sign(MANIFEST)
    version, sid, digest_algorithm, _, signature_algorithm, value = signer_info_fields(signature)
    certificate = signing_material.certificate
    (issuer_tag, _, issuer), (serial_tag, serial, _) = elements(sid[1])

    assert version[:2] == (0x02, b"\x01")
    assert sid[0] == 0x30
    assert issuer_tag == 0x30
    assert issuer == certificate.issuer.public_bytes()
    assert serial_tag == 0x02
    assert int.from_bytes(serial, "big") == certificate.serial_number
    assert digest_algorithm[1] == b"\x06\x09" + OID_SHA256 + b"\x05\x00"
    assert signature_algorithm[1] == b"\x06\x09" + OID_RSA_ENCRYPTION + b"\x05\x00"
    assert value[0] == 0x04
    assert len(value[1]) == 256


def test_both_certificates_are_embedded(
    signer: PassSigner, signing_material: SigningMaterial
) -> None:
    embedded = pkcs7.load_der_pkcs7_certificates(signer.sign(MANIFEST))
    assert len(embedded) == 2
    assert set(embedded) == {signing_material.certificate, signing_material.wwdr}


def test_signature_is_deterministic_for_fixed_time(signer: PassSigner) -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert signer.sign(MANIFEST, when) == signer.sign(MANIFEST, when)
    assert signer.sign(MANIFEST, when) != signer.sign(MANIFEST + b" ", when)


def test_ec_signatures_of_every_length_are_well_formed(
    ec_chain: tuple[SigningMaterial, Path],
) -> None:
    """DER ECDSA signatures are 70-72 bytes, so the outer lengths vary from call to call."""
    material, _ = ec_chain
    signer = PassSigner(material)
    public_key = material.certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    lengths = set()
    for i in range(40):
        manifest = MANIFEST + str(i).encode()
        signature = signer.sign(manifest)
        fields = signer_info_fields(signature)  # parsing checks every length exactly
        attributes, value = fields[3][1], fields[5][1]
        public_key.verify(
            value, b"\x31" + bytes((len(attributes),)) + attributes, ec.ECDSA(hashes.SHA256())
        )
        assert (
            signed_attributes(signature)[OID_MESSAGE_DIGEST][1] == hashlib.sha256(manifest).digest()
        )
        lengths.add(len(value))
    assert len(lengths) > 1


def test_default_signing_time_follows_the_clock(
    signer: PassSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1_700_000_000.9]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    first = signer.sign(MANIFEST)
    clock[0] = 1_700_000_001.0
    second = signer.sign(MANIFEST)

    assert signed_attributes(first)[OID_SIGNING_TIME] == (0x17, b"231114221320Z")
    assert signed_attributes(second)[OID_SIGNING_TIME] == (0x17, b"231114221321Z")
