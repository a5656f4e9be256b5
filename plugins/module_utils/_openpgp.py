# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Private to meetops.jitsi: the fingerprints of the primary keys in an OpenPGP public key file.

Enough of RFC 4880 / RFC 9580 to check an apt repository's signing key against a pinned fingerprint
without GnuPG on the host: ASCII armor (with its CRC-24), the packet framing (old and new format), and the
fingerprints of version 4 keys (SHA-1 over the public key packet) and version 6 keys (SHA-256). Nothing
here verifies signatures; apt does that with the key file this checks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

ARMOR_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
ARMOR_END = "-----END PGP PUBLIC KEY BLOCK-----"
TAG_PUBLIC_KEY = 6
CRC24_INIT = 0xB704CE
CRC24_POLY = 0x1864CFB


class KeyFileError(ValueError):
    """The data is not an OpenPGP public key file this module can read."""


def crc24(data: bytes) -> int:
    """The CRC-24 of RFC 4880 section 6.1, as ASCII armor carries it."""
    crc = CRC24_INIT
    for byte in data:
        crc ^= byte << 16
        for _unused in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= CRC24_POLY
    return crc & 0xFFFFFF


def is_armored(data: bytes) -> bool:
    return ARMOR_BEGIN.encode() in data


def dearmor(text: str) -> bytes:
    """The binary packets of an ASCII-armored public key block, its checksum checked when present."""
    lines = [line.strip() for line in text.strip().splitlines()]
    try:
        start = lines.index(ARMOR_BEGIN)
        end = lines.index(ARMOR_END, start)
    except ValueError as error:
        raise KeyFileError("no complete 'PGP PUBLIC KEY BLOCK' in the key file") from error
    body = lines[start + 1 : end]
    # Armor headers (Version: ..., Comment: ...) end at the first empty line.
    if "" in body:
        body = body[body.index("") + 1 :]
    checksum = None
    if body and body[-1].startswith("="):
        checksum = body.pop()[1:]
    try:
        data = base64.b64decode("".join(body), validate=True)
    except binascii.Error as error:
        raise KeyFileError(f"the armored key is not valid base64: {error}") from error
    if checksum is not None:
        try:
            expected = int.from_bytes(base64.b64decode(checksum, validate=True), "big")
        except binascii.Error as error:
            raise KeyFileError("the armor checksum line is not valid base64") from error
        if crc24(data) != expected:
            raise KeyFileError("the armor checksum does not match: the key file is damaged")
    return data


def armor(data: bytes) -> str:
    """ASCII armor for binary public key packets (what apt reads from a Signed-By file ending in .asc)."""
    encoded = base64.b64encode(data).decode()
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    checksum = base64.b64encode(crc24(data).to_bytes(3, "big")).decode()
    return "\n".join([ARMOR_BEGIN, "", *lines, "=" + checksum, ARMOR_END]) + "\n"


def packets(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, body) of each packet."""
    result = []
    offset = 0
    while offset < len(data):
        header = data[offset]
        if not header & 0x80:
            raise KeyFileError(f"byte {offset} does not start an OpenPGP packet")
        if header & 0x40:  # new format
            tag = header & 0x3F
            first = data[offset + 1] if offset + 1 < len(data) else 0
            if offset + (2 if first < 192 else 3 if first < 224 else 6) > len(data):
                raise KeyFileError("the key file ends inside a packet header")
            if first < 192:
                length, offset = first, offset + 2
            elif first < 224:
                length = ((first - 192) << 8) + data[offset + 2] + 192
                offset += 3
            elif first == 255:
                length = int.from_bytes(data[offset + 2 : offset + 6], "big")
                offset += 6
            else:
                raise KeyFileError("partial body lengths do not occur in key files")
        else:  # old format
            tag = (header >> 2) & 0x0F
            length_type = header & 0x03
            if length_type == 3:
                raise KeyFileError("indeterminate packet lengths do not occur in key files")
            size = 1 << length_type
            length = int.from_bytes(data[offset + 1 : offset + 1 + size], "big")
            offset += 1 + size
        body = data[offset : offset + length]
        if len(body) != length:
            raise KeyFileError("the key file ends inside a packet")
        result.append((tag, body))
        offset += length
    return result


def fingerprint(body: bytes) -> str:
    """The fingerprint (upper-case hex) of a public key packet's body."""
    version = body[0] if body else None
    if version == 4:
        return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest().upper()
    if version == 6:
        return hashlib.sha256(b"\x9b" + len(body).to_bytes(4, "big") + body).hexdigest().upper()
    raise KeyFileError(f"OpenPGP key version {version} is not supported (only 4 and 6)")


def primary_fingerprints(data: bytes) -> list[str]:
    """The fingerprints of the primary keys (not subkeys) in a key file, armored or binary."""
    binary = dearmor(data.decode("ascii", "replace")) if is_armored(data) else data
    found = [fingerprint(body) for tag, body in packets(binary) if tag == TAG_PUBLIC_KEY]
    if not found:
        raise KeyFileError("the key file holds no public key")
    return found


def normalize_fingerprint(value: str) -> str:
    """A fingerprint as written by people (spaces, lower case, 0x) in the form this module returns."""
    text = value.replace(" ", "").upper()
    return text[2:] if text.startswith("0X") else text


def armored_text(data: bytes) -> str:
    """The key file in one canonical ASCII armor (no armor headers), whether it came armored or binary."""
    binary = dearmor(data.decode("ascii", "replace")) if is_armored(data) else data
    return armor(binary)
