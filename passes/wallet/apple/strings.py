"""``<lang>.lproj/pass.strings``: Wallet shows a pass's labels in the device's language by
looking each label of pass.json up in the pass.strings of that language (UTF-16, the Apple
``.strings`` format: ``"key" = "value";`` lines)."""

from __future__ import annotations

from passes.wallet.labels import LANGUAGES, translations


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def strings_file(entries: dict[str, str]) -> bytes:
    lines = "".join(f"{_quoted(key)} = {_quoted(value)};\n" for key, value in entries.items())
    return lines.encode("utf-16")  # with a byte order mark, as .strings files have


def pass_strings() -> dict[str, bytes]:
    """The pass.strings of every language we ship, by their path in the pass."""
    return {
        f"{language}.lproj/pass.strings": strings_file(translations(language))
        for language in LANGUAGES
    }
