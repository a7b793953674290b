"""The part of HTTP/2 (RFC 9113) an APNs client needs: frames in and out, nothing more.

An APNs client only ever opens request streams, sends one small HEADERS and DATA frame on
each, and reads short answers; it never accepts streams, never sends large bodies and never
needs priorities. A general HTTP/2 engine (h2) spends most of a push's CPU on a state machine
per stream and an object per frame that this narrow use does not need, so frames are read and
written here directly: :func:`frames` splits bytes into frames, the ``*_frame`` helpers write
them. HPACK is the ``hpack`` library's.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE = 0x0, 0x1, 0x2, 0x3, 0x4, 0x5
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x6, 0x7, 0x8, 0x9

# Flags
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# Settings (RFC 9113 6.5.2)
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6

# Error codes (RFC 9113 7)
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 0x6, 0x7, 0x8, 0x9
ERROR_NAMES = {
    0x0: "NO_ERROR",
    0x1: "PROTOCOL_ERROR",
    0x2: "INTERNAL_ERROR",
    0x3: "FLOW_CONTROL_ERROR",
    0x4: "SETTINGS_TIMEOUT",
    0x5: "STREAM_CLOSED",
    0x6: "FRAME_SIZE_ERROR",
    0x7: "REFUSED_STREAM",
    0x8: "CANCEL",
    0x9: "COMPRESSION_ERROR",
    0xA: "CONNECT_ERROR",
    0xB: "ENHANCE_YOUR_CALM",
    0xC: "INADEQUATE_SECURITY",
    0xD: "HTTP_1_1_REQUIRED",
}

DEFAULT_MAX_FRAME_SIZE = 16_384  # what we accept; we never announce more
DEFAULT_WINDOW = 65_535
MAX_WINDOW = 2**31 - 1
MAX_STREAM_ID = 2**31 - 1

_HEADER = struct.Struct(">BHBBL")  # 24-bit length as 8 + 16 bits, type, flags, stream id
_UINT32 = struct.Struct(">L")
_GOAWAY = struct.Struct(">LL")
_SETTING = struct.Struct(">HL")


class ProtocolViolation(Exception):
    """The peer broke the protocol: the connection ends with GOAWAY and this code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{ERROR_NAMES.get(code, hex(code))}: {message}")
        self.code = code


@dataclass(frozen=True, slots=True)
class Frame:
    type: int
    flags: int
    stream_id: int
    payload: bytes


def frames(buffer: bytearray, max_size: int = DEFAULT_MAX_FRAME_SIZE) -> Iterator[Frame]:
    """The complete frames at the start of ``buffer``, removed from it as they are read (a
    partial frame stays for the next read). Raises on a frame larger than we accept."""
    position = 0
    end = len(buffer)
    unpack = _HEADER.unpack_from
    try:
        while end - position >= 9:
            high, low, kind, flags, stream_id = unpack(buffer, position)
            length = high << 16 | low
            if length > max_size:
                raise ProtocolViolation(FRAME_SIZE_ERROR, f"a {length}-byte frame")
            start = position + 9
            if end - start < length:
                break
            position = start + length
            yield Frame(kind, flags, stream_id & MAX_STREAM_ID, bytes(buffer[start:position]))
    finally:
        del buffer[:position]


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    length = len(payload)
    return _HEADER.pack(length >> 16, length & 0xFFFF, kind, flags, stream_id) + payload


def frame_header(kind: int, flags: int, stream_id: int, length: int) -> bytes:
    return _HEADER.pack(length >> 16, length & 0xFFFF, kind, flags, stream_id)


def settings_frame(settings: dict[int, int]) -> bytes:
    return frame(SETTINGS, 0, 0, b"".join(_SETTING.pack(k, v) for k, v in settings.items()))


def parse_settings(payload: bytes) -> list[tuple[int, int]]:
    if len(payload) % 6:
        raise ProtocolViolation(FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6")
    return [_SETTING.unpack_from(payload, at) for at in range(0, len(payload), 6)]


def window_update_frame(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, _UINT32.pack(increment))


def rst_stream_frame(stream_id: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream_id, _UINT32.pack(code))


def goaway_frame(last_stream_id: int, code: int, debug: bytes = b"") -> bytes:
    return frame(GOAWAY, 0, 0, _GOAWAY.pack(last_stream_id, code) + debug)


def parse_uint32(payload: bytes, what: str) -> int:
    if len(payload) != 4:
        raise ProtocolViolation(FRAME_SIZE_ERROR, f"{what} of {len(payload)} bytes")
    value: int = _UINT32.unpack(payload)[0]
    return value


def parse_goaway(payload: bytes) -> tuple[int, int, bytes]:
    """Last stream id the server will process, error code, debug data."""
    if len(payload) < 8:
        raise ProtocolViolation(FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes")
    last, code = _GOAWAY.unpack_from(payload)
    return last & MAX_STREAM_ID, code, payload[8:]


def unpad(frame_: Frame) -> bytes:
    """A DATA or HEADERS payload without padding (and HEADERS without priority fields)."""
    payload = frame_.payload
    start, end = 0, len(payload)
    if frame_.flags & PADDED:
        if not payload:
            raise ProtocolViolation(FRAME_SIZE_ERROR, "padded frame without pad length")
        start, end = 1, end - payload[0]
    if frame_.type == HEADERS and frame_.flags & PRIORITY_FLAG:
        start += 5
    if end < start:
        raise ProtocolViolation(PROTOCOL_ERROR, "padding longer than the frame")
    return payload[start:end] if (start, end) != (0, len(payload)) else payload
