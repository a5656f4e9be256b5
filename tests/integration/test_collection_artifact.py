"""Build the collection artifact, install it into an empty collections path, and use a role by FQCN.

Needs the lab (lab/setup): podman, the lab images, and the dependency collections for the podman
connection plugin.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).with_name("fqcn_playbook.yml")


def run(*argv: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    run("ansible-galaxy", "collection", "build", "--output-path", str(out), str(REPO))
    (tarball,) = out.glob("meetops-jitsi-*.tar.gz")
    return tarball


def test_artifact_holds_the_collection_and_no_test_tooling(artifact: Path):
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
    assert {"MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml"} <= names
    assert "roles/os_tuning/tasks/main.yml" in names
    assert "plugins/modules/sysctl_settings.py" in names
    tooling = {"lab", "extensions", "tests", ".ci", "requirements", "benchmarks"}
    leaked = sorted(n for n in names if n.split("/")[0] in tooling)
    assert leaked == []


@pytest.fixture
def container() -> str:
    name = f"meetops-artifact-{uuid.uuid4().hex[:8]}"
    run(
        "podman",
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        "artifact",
        "--systemd=always",
        "--cap-add",
        "SYS_ADMIN",
        "localhost/meetops-jitsi-lab:deb12",
    )
    try:
        run("podman", "exec", name, "systemctl", "is-system-running", "--wait", check=False)
        yield name
    finally:
        subprocess.run(["podman", "rm", "--force", "--time", "2", name], check=False, capture_output=True)


def test_installed_artifact_runs_a_role_by_fqcn(artifact: Path, container: str, tmp_path: Path):
    collections = tmp_path / "collections"
    # An empty collections path: the checkout (on the lab's path) must not count as installed.
    empty = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections))
    run(
        "ansible-galaxy",
        "collection",
        "install",
        "--offline",
        "--no-deps",  # community.crypto comes from the lab's dependency collections
        "-p",
        str(collections),
        str(artifact),
        env=empty,
    )
    assert (collections / "ansible_collections/meetops/jitsi/MANIFEST.json").is_file()

    # Only the installed artifact and the lab's dependency collections: not this checkout.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=f"{collections}:{os.environ['MEETOPS_DEPS']}")
    listing = run("ansible-galaxy", "collection", "list", "meetops.jitsi", env=env).stdout
    assert str(collections) in listing

    result = run(
        "ansible-playbook", "-i", f"{container},", "-c", "containers.podman.podman", str(PLAYBOOK), env=env
    )
    assert "failed=0" in result.stdout

    dropin = run(
        "podman", "exec", container, "cat", "/etc/systemd/system/nginx.service.d/60-meetops-limits.conf"
    ).stdout
    assert "LimitNOFILE=65000" in dropin.splitlines()
    somaxconn = run("podman", "exec", container, "cat", "/etc/sysctl.d/60-meetops-jitsi.conf").stdout
    assert "net.core.somaxconn = 4096" in somaxconn
