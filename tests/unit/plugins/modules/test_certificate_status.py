"""Unit tests for the certificate_status module's checks, with certificates made on the fly."""

from __future__ import annotations

import datetime
import grp
import os
import pwd
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.meetops.jitsi.plugins.modules import certificate_status as mod

NOW = datetime.datetime.now(datetime.UTC)
NAME = "meet.example.test"
SANS = (NAME, "conference.meet.example.test")


def make_ca(common_name: str = "test CA") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def issue(
    directory: Path,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    name: str = NAME,
    sans: tuple[str, ...] = SANS,
    days: int = 365,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> ec.EllipticCurvePrivateKey:
    host_key = key or ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca[0].subject)
        .public_key(host_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(san) for san in sans]), critical=False)
        .sign(ca[1], hashes.SHA256())
    )
    (directory / f"{NAME}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path = directory / f"{NAME}.key"
    key_path.write_bytes(
        host_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return host_key


WANTED = mod.Wanted(NAME, SANS, 30)


def test_a_current_certificate_has_no_problem(tmp_path: Path) -> None:
    ca = make_ca()
    issue(tmp_path, ca)
    assert mod.file_problem(str(tmp_path), WANTED, ca[0], NOW) is None


def test_the_names_may_come_in_any_order(tmp_path: Path) -> None:
    ca = make_ca()
    issue(tmp_path, ca, sans=tuple(reversed(SANS)))
    assert mod.file_problem(str(tmp_path), WANTED, ca[0], NOW) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sans": (NAME,)}, "names differ"),
        ({"name": "other.example.test"}, "common name is ['other.example.test']"),
        ({"days": 10}, "expires within 30 days"),
    ],
)
def test_a_certificate_that_differs_is_due(tmp_path: Path, change: dict, reason: str) -> None:
    ca = make_ca()
    issue(tmp_path, ca, **change)
    assert reason in mod.file_problem(str(tmp_path), WANTED, ca[0], NOW)


def test_a_certificate_of_another_ca_is_due(tmp_path: Path) -> None:
    issue(tmp_path, make_ca("test CA"))
    other_ca_same_name = make_ca("test CA")
    assert mod.file_problem(str(tmp_path), WANTED, other_ca_same_name[0], NOW) == (
        "certificate was not signed by this CA"
    )


def test_a_certificate_for_another_key_is_due(tmp_path: Path) -> None:
    ca = make_ca()
    issue(tmp_path, ca)
    replaced = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / f"{NAME}.key").write_bytes(
        replaced.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    assert mod.file_problem(str(tmp_path), WANTED, ca[0], NOW) == "certificate does not belong to the key"


def test_missing_or_broken_certificates_are_due(tmp_path: Path) -> None:
    ca = make_ca()
    assert mod.file_problem(str(tmp_path), WANTED, ca[0], NOW) == "no certificate"
    (tmp_path / f"{NAME}.crt").write_text("not a certificate")
    assert mod.file_problem(str(tmp_path), WANTED, ca[0], NOW) == "certificate does not parse"


def test_key_files_are_checked_for_owner_and_mode(tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    owner = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    assert mod.key_problem(str(key), owner, group, 0o640) == "no private key"
    key.write_text("x")
    key.chmod(0o600)
    assert mod.key_problem(str(key), owner, group, 0o640) == "private key has mode 0600, not 0640"
    key.chmod(0o640)
    assert mod.key_problem(str(key), owner, group, 0o640) is None
