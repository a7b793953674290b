"""Open a .pkpass the way Wallet does, and verify it the way the issue's acceptance states."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any


def unpack(data: bytes, directory: Path) -> dict[str, bytes]:
    """Unzip into ``directory``; every entry must be STORED and pass its CRC check."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED, info.filename
        files = {name: archive.read(name) for name in archive.namelist()}
    assert len(files) == len(archive.namelist()), "duplicate entries"
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


def openssl_verify(directory: Path, root_ca: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "openssl",
            "smime",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(directory / "signature"),
            "-content",
            str(directory / "manifest.json"),
            "-CAfile",
            str(root_ca),
            "-out",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def verify_pkpass(data: bytes, root_ca: Path, directory: Path) -> dict[str, Any]:
    """Assert the bundle is complete, hashed and signed; return the parsed pass.json."""
    files = unpack(data, directory)
    result = openssl_verify(directory, root_ca)
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr
    manifest = json.loads(files["manifest.json"])
    listed = set(manifest)
    present = set(files) - {"manifest.json", "signature"}
    assert listed == present, f"missing {present - listed}, extra {listed - present}"
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name]).hexdigest() == digest, name  # noqa: S324
    document: dict[str, Any] = json.loads(files["pass.json"])
    return document
