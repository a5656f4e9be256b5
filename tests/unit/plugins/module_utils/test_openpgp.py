"""Unit tests for _openpgp: ASCII armor and its CRC-24, packet framing, v4 and v6 fingerprints."""

from __future__ import annotations

import base64

import pytest

from ansible_collections.meetops.jitsi.plugins.module_utils import _openpgp
from ansible_collections.meetops.jitsi.tests.unit.plugins.openpgp_keys import (
    BOTH_ASC,
    K1_ASC,
    K1_FPR,
    K2_FPR,
    K2_GPG,
    K3_ASC,
    K3_FPR,
    K3_SUBKEY_FPR,
    V6_ASC,
    V6_FPR,
    V6_SUBKEY_FPR,
)


def binary(armored: str) -> bytes:
    return _openpgp.dearmor(armored)


def new_format(packets: list[tuple[int, bytes]], length_form: str) -> bytes:
    """The packets framed in the new format (RFC 9580 4.2.1): the shortest length encoding, or five octets."""
    out = b""
    for tag, body in packets:
        size = len(body)
        if length_form == "shortest" and size < 192:
            header = bytes([0xC0 | tag, size])
        elif length_form == "shortest" and size < 8384:
            header = bytes([0xC0 | tag, ((size - 192) >> 8) + 192, (size - 192) & 0xFF])
        else:
            header = bytes([0xC0 | tag, 0xFF]) + size.to_bytes(4, "big")
        out += header + body
    return out


def old_format_four_octet(packets: list[tuple[int, bytes]]) -> bytes:
    return b"".join(
        bytes([0x80 | tag << 2 | 2]) + len(body).to_bytes(4, "big") + body for tag, body in packets
    )


# --- fingerprints, as GnuPG printed them ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fingerprints"),
    [
        (K1_ASC.encode(), [K1_FPR]),
        (K2_GPG, [K2_FPR]),
        (K3_ASC.encode(), [K3_FPR]),
        (BOTH_ASC.encode(), [K1_FPR, K2_FPR]),
        (binary(K1_ASC), [K1_FPR]),
        (binary(K3_ASC), [K3_FPR]),
        (binary(BOTH_ASC), [K1_FPR, K2_FPR]),
        (_openpgp.armor(K2_GPG).encode(), [K2_FPR]),
    ],
    ids=["k1.asc", "k2.gpg", "k3.asc", "both.asc", "k1-binary", "k3-binary", "both-binary", "k2-armored"],
)
def test_primary_fingerprints_match_gnupg(data: bytes, fingerprints: list[str]):
    assert _openpgp.primary_fingerprints(data) == fingerprints


def test_subkey_is_not_reported_but_has_gnupgs_fingerprint():
    found = _openpgp.packets(binary(K3_ASC))
    assert [tag for tag, _unused in found] == [6, 13, 2, 14, 2]  # key, user id, sig, subkey, binding sig
    assert K3_SUBKEY_FPR not in _openpgp.primary_fingerprints(K3_ASC.encode())
    [subkey] = [body for tag, body in found if tag == 14]
    assert _openpgp.fingerprint(subkey) == K3_SUBKEY_FPR


def test_version_6_fingerprints_match_rfc_9580_sample():
    assert _openpgp.primary_fingerprints(V6_ASC.encode()) == [V6_FPR]
    [subkey] = [body for tag, body in _openpgp.packets(binary(V6_ASC)) if tag == 14]
    assert _openpgp.fingerprint(subkey) == V6_SUBKEY_FPR


@pytest.mark.parametrize("length_form", ["shortest", "five-octet"])
@pytest.mark.parametrize("armored", [K1_ASC, K3_ASC, BOTH_ASC, V6_ASC], ids=["k1", "k3", "both", "v6"])
def test_new_format_framing_gives_the_same_packets(armored: str, length_form: str):
    """GnuPG 2.2 writes old-format packets; the same packets in new-format framing read alike.

    With the shortest encoding K3's 397-byte key packet takes a two-octet length, its user id one octet.
    The RFC's v6 sample is new-format already.
    """
    found = _openpgp.packets(binary(armored))
    framed = new_format(found, length_form)
    assert _openpgp.packets(framed) == found
    assert _openpgp.primary_fingerprints(framed) == _openpgp.primary_fingerprints(armored.encode())


def test_old_format_four_octet_lengths():
    found = _openpgp.packets(binary(K3_ASC))
    assert _openpgp.packets(old_format_four_octet(found)) == found


def test_two_octet_length_boundaries():
    """192 is the first two-octet length and 8383 the last (RFC 9580 4.2.1.2)."""
    for size in (192, 8383):
        body = bytes(size)
        first, second = ((size - 192) >> 8) + 192, (size - 192) & 0xFF
        assert _openpgp.packets(bytes([0xC0 | 13, first, second]) + body) == [(13, body)]
    assert _openpgp.packets(bytes([0xC0 | 13, 191]) + bytes(191)) == [(13, bytes(191))]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a key at all", "byte 0 does not start an OpenPGP packet"),
        (b"\xc6", "ends inside a packet header"),
        (b"\xc6\xc0", "ends inside a packet header"),  # a two-octet length cut after its first octet
        (b"\xc6\xff\x00\x00", "ends inside a packet header"),  # a five-octet length cut short
        (b"\x99\x01", "ends inside a packet"),  # an old-format two-octet length cut short
        (b"\xc6\xe0" + bytes(32), "partial body lengths"),
        (b"\x9b" + bytes(32), "indeterminate packet lengths"),
    ],
    ids=["text", "header", "two-octet", "five-octet", "old-two-octet", "partial", "indeterminate"],
)
def test_packets_refuses_what_is_not_packet_framing(data: bytes, message: str):
    with pytest.raises(_openpgp.KeyFileError, match=message):
        _openpgp.packets(data)


def test_packets_refuses_a_truncated_key():
    with pytest.raises(_openpgp.KeyFileError, match="ends inside a packet"):
        _openpgp.primary_fingerprints(K2_GPG[:-10])


@pytest.mark.parametrize("version", [3, 5])
def test_fingerprint_refuses_other_key_versions(version: int):
    body = bytes([version]) + binary(K1_ASC)[3:54]
    with pytest.raises(_openpgp.KeyFileError, match=f"version {version} is not supported"):
        _openpgp.fingerprint(body)
    with pytest.raises(_openpgp.KeyFileError, match="version None is not supported"):
        _openpgp.fingerprint(b"")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x02 garbage",
        b"<html><body>404 Not Found</body></html>",
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n",
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n=twTO\n-----END PGP PUBLIC KEY BLOCK-----\n",
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEaw8kdhYJKwYBBAHaRw8B\n",
        new_format([(5, body) for _tag, body in _openpgp.packets(binary(K1_ASC))[:1]], "shortest"),
    ],
    ids=["empty", "binary-garbage", "html", "empty-block", "empty-block-crc", "no-end", "secret-key-tag"],
)
def test_what_holds_no_public_key_is_refused(data: bytes):
    with pytest.raises(_openpgp.KeyFileError):
        _openpgp.primary_fingerprints(data)


def test_empty_block_says_it_holds_no_key():
    with pytest.raises(_openpgp.KeyFileError, match="holds no public key"):
        _openpgp.primary_fingerprints(f"{_openpgp.ARMOR_BEGIN}\n\n{_openpgp.ARMOR_END}\n".encode())


# --- armor and its checksum -----------------------------------------------------------------------------


def test_crc24():
    assert _openpgp.crc24(b"") == 0xB704CE
    # GnuPG's own checksum line of k1.asc.
    assert _openpgp.crc24(binary(K1_ASC)) == int.from_bytes(base64.b64decode("C42T"), "big")
    assert _openpgp.crc24(K2_GPG) != _openpgp.crc24(K2_GPG[:-1] + bytes([K2_GPG[-1] ^ 1]))


def test_damaged_checksum_is_refused():
    damaged = K1_ASC.replace("=C42T", "=C42U")
    with pytest.raises(_openpgp.KeyFileError, match="checksum does not match"):
        _openpgp.dearmor(damaged)
    with pytest.raises(_openpgp.KeyFileError, match="checksum does not match"):
        _openpgp.primary_fingerprints(damaged.encode())
    with pytest.raises(_openpgp.KeyFileError, match="checksum line is not valid base64"):
        _openpgp.dearmor(K1_ASC.replace("=C42T", "=C4*T"))


def test_damaged_body_is_refused():
    line = K3_ASC.splitlines()[5]
    flipped = line[:10] + ("A" if line[10] != "A" else "B") + line[11:]
    with pytest.raises(_openpgp.KeyFileError, match="checksum does not match"):
        _openpgp.primary_fingerprints(K3_ASC.replace(line, flipped).encode())
    with pytest.raises(_openpgp.KeyFileError, match="not valid base64"):
        _openpgp.primary_fingerprints(K3_ASC.replace(line, line[:10] + "*" + line[11:]).encode())
    with pytest.raises(_openpgp.KeyFileError, match="not valid base64"):
        _openpgp.primary_fingerprints(K3_ASC.replace(line, line[:-1]).encode())  # a character lost


def test_dearmor_reads_headers_crlf_indentation_and_text_around_the_block():
    lines = K1_ASC.splitlines()
    with_headers = "\n".join([lines[0], "Version: GnuPG v2", "Comment: meetops test", *lines[1:]])
    crlf = "\r\n".join(f"  {line}" for line in lines)
    around = "The Jitsi key:\n\n" + K1_ASC + "\nThat was it.\n"
    for text in (with_headers, crlf, around):
        assert _openpgp.dearmor(text) == binary(K1_ASC)
        assert _openpgp.primary_fingerprints(text.encode()) == [K1_FPR]


def test_dearmor_without_checksum_reads_the_body():
    """RFC 9580 makes the checksum optional; the v6 sample has none."""
    without = "\n".join(line for line in K1_ASC.splitlines() if not line.startswith("=")) + "\n"
    assert _openpgp.dearmor(without) == binary(K1_ASC)


def test_dearmor_needs_a_whole_public_key_block():
    with pytest.raises(_openpgp.KeyFileError, match="no complete 'PGP PUBLIC KEY BLOCK'"):
        _openpgp.dearmor(K1_ASC.replace(_openpgp.ARMOR_END, ""))
    private = K1_ASC.replace("PUBLIC KEY", "PRIVATE KEY")
    with pytest.raises(_openpgp.KeyFileError, match="no complete"):
        _openpgp.dearmor(private)


def test_is_armored():
    assert _openpgp.is_armored(K1_ASC.encode())
    assert not _openpgp.is_armored(K2_GPG)


@pytest.mark.parametrize("armored", [K1_ASC, K3_ASC, BOTH_ASC])
def test_armored_text_of_gnupg_armor_is_gnupgs_armor(armored: str):
    """GnuPG's armor (no headers, 64 columns, CRC) is already the canonical form, byte for byte."""
    assert _openpgp.armored_text(armored.encode()) == armored


@pytest.mark.parametrize(
    "data",
    [
        K2_GPG,
        K1_ASC.encode(),
        V6_ASC.encode(),
        K1_ASC.replace("-----\n\n", "-----\nVersion: GnuPG v2\nComment: x\n\n", 1).encode(),
        K3_ASC.replace("\n", "\r\n").encode(),
    ],
    ids=["binary", "armored", "v6-no-checksum", "headers", "crlf"],
)
def test_armored_text_is_canonical_and_stable(data: bytes):
    packets = _openpgp.dearmor(data.decode()) if _openpgp.is_armored(data) else data
    text = _openpgp.armored_text(data)
    lines = text.splitlines()
    assert lines[0] == _openpgp.ARMOR_BEGIN
    assert lines[1] == ""
    assert lines[-1] == _openpgp.ARMOR_END
    assert text.endswith("\n")
    assert all(len(line) <= 64 for line in lines[2:-1])
    assert lines[-2] == "=" + base64.b64encode(_openpgp.crc24(packets).to_bytes(3, "big")).decode()
    assert _openpgp.dearmor(text) == packets
    assert _openpgp.armored_text(text.encode()) == text
    assert _openpgp.primary_fingerprints(text.encode()) == _openpgp.primary_fingerprints(data)


def test_binary_input_is_armored():
    text = _openpgp.armored_text(K2_GPG)
    assert _openpgp.is_armored(text.encode())
    assert _openpgp.dearmor(text) == K2_GPG
    assert text == _openpgp.armor(K2_GPG)


def test_armored_text_refuses_a_damaged_armor():
    with pytest.raises(_openpgp.KeyFileError, match="checksum does not match"):
        _openpgp.armored_text(K1_ASC.replace("=C42T", "=C42U").encode())


# --- fingerprints as people write them ------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "B5B464926863B2680B857AAE83C0C798D85CBD66",
        "b5b464926863b2680b857aae83c0c798d85cbd66",
        "B5B4 6492 6863 B268 0B85  7AAE 83C0 C798 D85C BD66",
        "0xB5B464926863B2680B857AAE83C0C798D85CBD66",
        "0X b5b4 6492 6863 b268 0b85 7aae 83c0 c798 d85c bd66",
    ],
)
def test_normalize_fingerprint(written: str):
    assert _openpgp.normalize_fingerprint(written) == K1_FPR


def test_normalize_fingerprint_keeps_what_is_not_a_fingerprint_recognisable():
    assert _openpgp.normalize_fingerprint("2dc1389c") == "2DC1389C"
    assert _openpgp.normalize_fingerprint("") == ""
