"""Assemble a ``.pkpass``: pass.json, images, manifest.json and signature in a STORED zip.

Everything that is the same for all cards of a program design (image bytes, their SHA-1s, CRCs and
zip records) is prepared once in :class:`StaticFiles`, so that a pass costs little beyond its
signature: the per-pass work is pass.json, its hashes, the manifest, the signature and byte joins.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
CENTRAL_HEADER = struct.Struct("<IHHHHHHIIIHHHHHII")
END_OF_CENTRAL_DIRECTORY = struct.Struct("<IHHHHIIH")
VERSION = 20  # 2.0: the minimum for plain STORED entries
MADE_BY_UNIX = (3 << 8) | VERSION
FILE_MODE = 0o100644 << 16
# A fixed DOS timestamp (1980-01-01 00:00) keeps static records reusable; dates inside a pass
# bundle are never read by Wallet.
DOS_TIME, DOS_DATE = 0, (0 << 9) | (1 << 5) | 1
MAX_ZIP_ENTRIES = 0xFFFF


class Signer(Protocol):
    """What the packager needs of a signer (``signature.PassSigner``)."""

    def sign(self, manifest: bytes, signing_time: datetime | None = None) -> bytes: ...


@dataclass(frozen=True)
class _Record:
    name: bytes
    local: bytes  # local header + name + data
    crc: int
    size: int


def _record(name: str, data: bytes) -> _Record:
    encoded = name.encode("ascii")
    crc = zlib.crc32(data)
    header = LOCAL_HEADER.pack(
        0x04034B50, VERSION, 0, 0, DOS_TIME, DOS_DATE, crc, len(data), len(data), len(encoded), 0
    )
    return _Record(encoded, header + encoded + data, crc, len(data))


def _central(record: _Record, offset: int) -> bytes:
    return (
        CENTRAL_HEADER.pack(
            0x02014B50,
            MADE_BY_UNIX,
            VERSION,
            0,
            0,
            DOS_TIME,
            DOS_DATE,
            record.crc,
            record.size,
            record.size,
            len(record.name),
            0,
            0,
            0,
            0,
            FILE_MODE,
            offset,
        )
        + record.name
    )


class StaticFiles:
    """The files shared by every pass of one program design, prepared for reuse."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        reserved = {"pass.json", "manifest.json", "signature"} & set(files)
        if reserved:
            raise ValueError(f"static files may not be named {sorted(reserved)}")
        if "icon.png" not in files:
            raise ValueError("a pass needs icon.png")
        self.names = tuple(sorted(files))
        self.records = [_record(name, files[name]) for name in self.names]
        # Static entries come first in the zip, so their offsets and central directory records
        # never change from pass to pass and can be joined as ready-made blobs.
        central: list[bytes] = []
        offset = 0
        for record in self.records:
            central.append(_central(record, offset))
            offset += len(record.local)
        self.local_blob = b"".join(record.local for record in self.records)
        self.central_blob = b"".join(central)
        hashes = {name: hashlib.sha1(files[name]).hexdigest() for name in self.names}  # noqa: S324
        # The manifest is {"pass.json": "<sha1>", <these entries>}: keep the tail pre-serialised.
        tail = json.dumps(hashes, separators=(",", ":"))
        self._manifest_tail = ("," + tail[1:]).encode() if hashes else b"}"


def manifest_for(pass_json: bytes, static: StaticFiles) -> bytes:
    """``manifest.json``: lowercase hex SHA-1 of every file but itself and the signature."""
    digest = hashlib.sha1(pass_json).hexdigest()  # noqa: S324 - Apple's manifest format is SHA-1
    return b'{"pass.json":"' + digest.encode() + b'"' + static._manifest_tail


def build_pkpass(
    pass_json: bytes, static: StaticFiles, signer: Signer, signing_time: datetime | None = None
) -> bytes:
    """The complete signed ``.pkpass`` bytes."""
    manifest = manifest_for(pass_json, static)
    signature = signer.sign(manifest, signing_time)
    dynamic = (
        _record("pass.json", pass_json),
        _record("manifest.json", manifest),
        _record("signature", signature),
    )
    offset = len(static.local_blob)
    central = []
    for record in dynamic:
        central.append(_central(record, offset))
        offset += len(record.local)
    count = len(static.records) + len(dynamic)
    directory_size = len(static.central_blob) + sum(len(entry) for entry in central)
    end = END_OF_CENTRAL_DIRECTORY.pack(0x06054B50, 0, 0, count, count, directory_size, offset, 0)
    return b"".join(
        (
            static.local_blob,
            *(record.local for record in dynamic),
            static.central_blob,
            *central,
            end,
        )
    )
