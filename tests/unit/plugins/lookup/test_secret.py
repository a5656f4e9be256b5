"""Unit tests for the secret lookup and the store's layout (module_utils/_secrets)."""

from __future__ import annotations

import os
import stat
import string
from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import lookup_loader

from ansible_collections.meetops.jitsi.plugins.module_utils._secrets import (
    PASSWORD_LENGTH,
    SecretPathError,
    password_path,
)


def secret(*terms: str, **options: object) -> list[str]:
    lookup = lookup_loader.get("meetops.jitsi.secret", loader=DataLoader(), templar=None)
    assert lookup is not None, "meetops.jitsi.secret is not found"
    return lookup.run(list(terms), {}, **options)


def test_layout_is_directory_namespace_passwords_account(tmp_path: Path):
    assert password_path(str(tmp_path), "meet.example.com", "focus@auth.meet.example.com") == str(
        tmp_path / "meet.example.com" / "passwords" / "focus@auth.meet.example.com"
    )


def test_a_new_password_is_made_once_and_kept(tmp_path: Path):
    first = secret(
        "focus@auth.meet.example.com",
        "jvb@auth.meet.example.com",
        directory=str(tmp_path),
        namespace="meet.example.com",
    )
    again = secret(
        "focus@auth.meet.example.com",
        "jvb@auth.meet.example.com",
        directory=str(tmp_path),
        namespace="meet.example.com",
    )
    assert first == again
    assert first[0] != first[1]
    for password in first:
        assert len(password) == PASSWORD_LENGTH
        assert set(password) <= set(string.ascii_letters + string.digits)
    stored = tmp_path / "meet.example.com" / "passwords" / "focus@auth.meet.example.com"
    assert stored.read_text().strip() == first[0]
    assert not stat.S_IMODE(stored.stat().st_mode) & 0o077, "the password file is readable by others"


def test_an_existing_password_is_read_as_written_by_the_password_lookup(tmp_path: Path):
    stored = tmp_path / "ns" / "passwords" / "focus@auth.example.com"
    stored.parent.mkdir(parents=True)
    stored.write_text("Kept0ld1Password\n")
    assert secret("focus@auth.example.com", directory=str(tmp_path), namespace="ns") == ["Kept0ld1Password"]


def test_namespaces_keep_deployments_apart(tmp_path: Path):
    one = secret("focus@auth.a.example", directory=str(tmp_path), namespace="a")
    two = secret("focus@auth.a.example", directory=str(tmp_path), namespace="b")
    assert one != two


def test_without_create_a_missing_password_is_empty_and_nothing_is_written(tmp_path: Path):
    assert secret("focus@auth.example.com", directory=str(tmp_path), namespace="ns", create=False) == [""]
    assert not any(tmp_path.iterdir())
    made = secret("focus@auth.example.com", directory=str(tmp_path), namespace="ns")
    assert secret("focus@auth.example.com", directory=str(tmp_path), namespace="ns", create=False) == made


@pytest.mark.parametrize(
    ("namespace", "account", "named"),
    [
        ("../etc", "focus@auth.example.com", "namespace"),
        ("..", "focus@auth.example.com", "namespace"),
        ("a/b", "focus@auth.example.com", "namespace"),
        ("", "focus@auth.example.com", "namespace"),
        ("ns", "../../focus", "account"),
        ("ns", ".hidden", "account"),
        ("ns", "focus @auth", "account"),
    ],
)
def test_a_name_that_is_not_one_path_component_is_refused_naming_it(
    tmp_path: Path, namespace: str, account: str, named: str
):
    with pytest.raises(AnsibleLookupError, match=f"secrets {named} is"):
        secret(account, directory=str(tmp_path), namespace=namespace)
    assert not any(tmp_path.iterdir())


def test_a_relative_directory_is_refused_naming_the_variable():
    with pytest.raises(SecretPathError, match="meetops_jitsi_secrets_dir"):
        password_path("relative/dir", "ns", "focus@auth.example.com")


def test_the_store_is_not_readable_by_others(tmp_path: Path):
    secret("focus@auth.example.com", directory=str(tmp_path), namespace="ns")
    passwords = tmp_path / "ns" / "passwords"
    assert not stat.S_IMODE(os.stat(passwords).st_mode) & 0o007
