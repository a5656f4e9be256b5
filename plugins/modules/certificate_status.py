#!/usr/bin/python
# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Say, in one call, which of a host's certificates from the internal CA need (re)issuing.

Used by the private role internal_pki before it makes keys, signing requests and certificates: on a host
whose certificates are all current, that is one module call instead of several per certificate.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_status
short_description: Which certificates in a directory need (re)issuing from a CA
version_added: 0.1.0
description:
  - For each wanted certificate, looks at C(<directory>/<name>.key) and C(<directory>/<name>.crt) and says
    whether it is current, and if not, why. Changes nothing on the host (check mode is the same run).
  - A certificate is current when the key exists with the wanted owner, group and mode; the certificate
    parses, was signed by O(ca_certificate), belongs to the key, has exactly the wanted DNS names as
    subject alternative names and the name as common name, and is valid for more than O(renew_days) days.
  - Needs the Python library cryptography on the host (Debian's python3-cryptography).
options:
  directory:
    description: Directory holding C(<name>.key) and C(<name>.crt).
    type: path
    required: true
  certificates:
    description: The wanted certificates, each with C(name) (common name and file name) and C(sans).
    type: list
    elements: dict
    required: true
  ca_certificate:
    description: The CA certificate (PEM) that must have signed each certificate.
    type: str
    required: true
  renew_days:
    description: A certificate that expires within this many days is due.
    type: int
    default: 30
  key_owner:
    description: Owner the private keys must have.
    type: str
    default: root
  key_group:
    description: Group the private keys must have.
    type: str
    required: true
  key_mode:
    description: Permission bits the private keys must have, in octal.
    type: str
    default: "0640"
requirements:
  - cryptography (python3-cryptography) on the managed host
author: meetops.jitsi maintainers (@meetops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Find the certificates due for (re)issuing
  meetops.jitsi.certificate_status:
    directory: /etc/prosody/certs
    certificates:
      - name: meet.example.com
        sans: [meet.example.com, conference.meet.example.com]
    ca_certificate: "{{ lookup('ansible.builtin.file', '/srv/ca/ca.crt') }}"
    key_group: prosody
  register: status
"""

RETURN = r"""
current:
  description: Names of the certificates that are current.
  type: list
  elements: str
  returned: always
due:
  description: Names of the certificates to (re)issue, each with the first reason found.
  type: dict
  returned: always
  sample: {"auth.meet.example.com": "expires within 30 days"}
"""

import datetime
import grp
import os
import pwd
import stat
from dataclasses import dataclass
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import NameOID

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported to the user by the module
    HAS_CRYPTOGRAPHY = False


def _public_bytes(public_key: Any) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _not_after(certificate: Any) -> datetime.datetime:
    if hasattr(certificate, "not_valid_after_utc"):
        return certificate.not_valid_after_utc
    return certificate.not_valid_after.replace(tzinfo=datetime.UTC)


def signed_by(certificate: Any, ca: Any) -> bool:
    """Whether `ca` issued `certificate` (cryptography 38 on Debian 12 lacks verify_directly_issued_by)."""
    if certificate.issuer != ca.subject:
        return False
    public_key = ca.public_key()
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(
                certificate.signature,
                certificate.tbs_certificate_bytes,
                ec.ECDSA(certificate.signature_hash_algorithm),
            )
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(
                certificate.signature,
                certificate.tbs_certificate_bytes,
                padding.PKCS1v15(),
                certificate.signature_hash_algorithm,
            )
        else:
            return False
    except InvalidSignature:
        return False
    return True


def key_problem(path: str, owner: str, group: str, mode: int) -> str | None:
    """Why the key file at `path` is not as wanted, or None."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "no private key"
    if stat.S_IMODE(info.st_mode) != mode:
        return f"private key has mode {stat.S_IMODE(info.st_mode):04o}, not {mode:04o}"
    try:
        uid, gid = pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError:
        return f"user {owner} or group {group} does not exist yet"
    if (info.st_uid, info.st_gid) != (uid, gid):
        return f"private key is not owned by {owner}:{group}"
    return None


@dataclass(frozen=True)
class Wanted:
    """A certificate as it should be: its common name, DNS names and the renewal margin."""

    name: str
    sans: tuple[str, ...]
    renew_days: int


def dns_names(certificate: Any) -> list[str]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return sorted(extension.value.get_values_for_type(x509.DNSName))


def certificate_problem(
    certificate: Any, key_public: bytes, wanted: Wanted, ca: Any, now: datetime.datetime
) -> str | None:
    """Why a parsed certificate must be (re)issued, or None when it is current."""
    common_names = [item.value for item in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    checks = (
        (lambda: signed_by(certificate, ca), "certificate was not signed by this CA"),
        (
            lambda: _public_bytes(certificate.public_key()) == key_public,
            "certificate does not belong to the key",
        ),
        (lambda: common_names == [wanted.name], f"common name is {common_names}, not {wanted.name}"),
        (lambda: dns_names(certificate) == sorted(wanted.sans), f"names differ from {sorted(wanted.sans)}"),
        (
            lambda: _not_after(certificate) > now + datetime.timedelta(days=wanted.renew_days),
            f"expires within {wanted.renew_days} days",
        ),
    )
    return next((message for check, message in checks if not check()), None)


def file_problem(directory: str, wanted: Wanted, ca: Any, now: datetime.datetime) -> str | None:
    """Read C(<name>.key) and C(<name>.crt) in `directory`; why they must be (re)issued, or None."""
    try:
        with open(os.path.join(directory, f"{wanted.name}.crt"), "rb") as handle:
            certificate = x509.load_pem_x509_certificate(handle.read())
    except FileNotFoundError:
        return "no certificate"
    except ValueError:
        return "certificate does not parse"
    with open(os.path.join(directory, f"{wanted.name}.key"), "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    return certificate_problem(certificate, _public_bytes(key.public_key()), wanted, ca, now)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "directory": {"type": "path", "required": True},
            "certificates": {"type": "list", "elements": "dict", "required": True},
            "ca_certificate": {"type": "str", "required": True},
            "renew_days": {"type": "int", "default": 30},
            # The key file's owner, group and mode, not the key.
            "key_owner": {"type": "str", "default": "root", "no_log": False},
            "key_group": {"type": "str", "required": True, "no_log": False},
            "key_mode": {"type": "str", "default": "0640", "no_log": False},
        },
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography (Debian: python3-cryptography)"))
    params = module.params
    try:
        ca = x509.load_pem_x509_certificate(params["ca_certificate"].encode())
        mode = int(params["key_mode"], 8)
    except ValueError as error:
        module.fail_json(msg=f"ca_certificate must be a PEM certificate and key_mode octal: {error}")
    now = datetime.datetime.now(datetime.UTC)
    current: list[str] = []
    due: dict[str, str] = {}
    for wanted in params["certificates"]:
        name = str(wanted["name"])
        key_path = os.path.join(params["directory"], f"{name}.key")
        problem = key_problem(key_path, params["key_owner"], params["key_group"], mode)
        if problem is None:
            spec = Wanted(name, tuple(str(san) for san in wanted.get("sans") or []), params["renew_days"])
            problem = file_problem(params["directory"], spec, ca, now)
        if problem is None:
            current.append(name)
        else:
            due[name] = problem
    module.exit_json(changed=False, current=current, due=due)


if __name__ == "__main__":
    main()
