"""Small files whose headers say they hold huge images: what the size checks must refuse before
decoding. Shared by the tests and bench/hardening_probe.py."""

import io
import struct
import zlib

from PIL import Image


def huge_webp() -> bytes:
    """A few dozen bytes of lossless WebP whose header says 16,383 x 16,383 (268 Mpixels)."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "WEBP", lossless=True)
    data = bytearray(out.getvalue())
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    side = 16383 - 1
    bits = side | side << 14 | (data[24] >> 4) << 28  # 14 bits each, then alpha and version
    data[21:25] = struct.pack("<I", bits)
    return bytes(data)


def png_of_size(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header (checksum included) says width x height: a valid PNG's start."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    data = out.getvalue()
    ihdr = b"IHDR" + struct.pack(">II", width, height) + data[24:29]
    return data[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + data[33:]
