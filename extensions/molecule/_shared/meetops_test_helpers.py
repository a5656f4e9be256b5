"""Helpers the scenarios' verifiers share (on their path through extensions/molecule/config.yml).

Reach any host of the scenario with testinfra over the shared SSH connections (ssh_config). Run Ansible
from a verifier: a module against one host, or a playbook against the scenario's inventory,
with the output a test can read; read a generated password from the controller's store the way the
roles do (meetops.jitsi.secret).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import testinfra
from cryptography.hazmat.primitives import serialization

# The collection itself (lab/env.sh puts its tree first on ANSIBLE_COLLECTIONS_PATH): the store's layout
# comes from its module_utils, never from a copy here.
_COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(":")
sys.path[:0] = [path for path in _COLLECTIONS if path and path not in sys.path]
from ansible_collections.meetops.jitsi.plugins.module_utils._secrets import password_path

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
# How Ansible and testinfra reach the containers (extensions/molecule/config.yml points both at it).
SSH_CONFIG = str(Path(__file__).with_name("ssh_config"))
# One JSON document on stdout, without the timing callback the scenarios' ansible.cfg enables.
JSON_OUTPUT = {
    "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
    "ANSIBLE_STDOUT_CALLBACK": "json",
    "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.json",
}


# The scenarios keep their generated secrets inside their own run (meetops_jitsi_secrets_dir).
SECRETS_DIR = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "secrets"


def on(name: str):
    """testinfra's host NAME of the scenario, over its shared SSH connection."""
    return testinfra.get_host(f"ssh://{name}", ssh_config=SSH_CONFIG)


def address_of(name: str) -> str:
    """Host NAME's address on the scenario's network."""
    return on(name).check_output("hostname -I").split()[0]


# Asks ADDRESS:PORT over HTTP from the container it runs in (from SOURCE when given); prints status,
# Content-Type and body as JSON.
_HTTP_ASK = (
    "import http.client, json, sys; address, port, method, path, source = sys.argv[1:6]; "
    "c = http.client.HTTPConnection(address, int(port), timeout=20, "
    "source_address=(source, 0) if source else None); c.request(method, path); r = c.getresponse(); "
    "print(json.dumps([r.status, r.getheader('Content-Type'), r.read().decode()]))"
)


def http_ask(
    client, address: str, port: int, method: str = "GET", path: str = "/metrics", *, source: str = ""
) -> tuple[int, str | None, str]:
    """One HTTP request made inside the container CLIENT (a testinfra host): (status, Content-Type, body)."""
    argv = " ".join(shlex.quote(str(arg)) for arg in (address, port, method, path, source))
    status, content_type, body = json.loads(
        client.check_output(f"python3 -c {shlex.quote(_HTTP_ASK)} {argv}")
    )
    return status, content_type, body


def main_pid(host, unit: str) -> str:
    """The main process of UNIT on HOST ("0" when it has none)."""
    return host.check_output(f"systemctl show -p MainPID --value {shlex.quote(unit)}")


def crash_and_wait_back(host, unit: str, timeout: float = 30) -> float:
    """Kill UNIT's main process with SIGKILL, as a crash would; the seconds until systemd ran it again."""
    before = main_pid(host, unit)
    assert before != "0", f"{unit} is not running: {host.run(f'systemctl status {unit}').stdout}"
    host.check_output(f"kill -KILL {before}")
    start = time.monotonic()
    while True:
        now = main_pid(host, unit)
        if now not in ("0", before) and host.service(unit).is_running:
            return time.monotonic() - start
        status = f"systemctl status {shlex.quote(unit)}"
        assert time.monotonic() - start < timeout, (
            f"{unit} did not come back within {timeout} s of a crash: {host.run(status).stdout}"
        )
        time.sleep(0.5)


def hocon(host, path: str, root: str) -> dict:
    """ROOT of the HOCON file PATH as JSON, parsed on HOST by ruby-hocon (the parser the roles check with)."""
    cmd = host.run(f"hocon --in-file {shlex.quote(path)} --json get {shlex.quote(root)}")
    assert cmd.rc == 0, f"{path} does not parse as HOCON: {cmd.stderr}"
    return json.loads(cmd.stdout)


def c2s_connections(text: str) -> float:
    """The established client connections in Prosody's /metrics TEXT, over all hosts and address families."""
    assert "# TYPE prosody_mod_c2s__connections gauge" in text, text[:2000]
    values = re.findall(r"^prosody_mod_c2s__connections(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.M)
    return sum(float(value) for value in values)  # no sample yet: none were ever connected


def wait_for_no_test_clients(host, timeout: float = 60) -> None:
    """Wait until no xmpp-probe client of an earlier test is left on HOST (they hold rooms in the background),
    so that a count of connected clients starts from the clients of the test that reads it."""
    deadline = time.monotonic() + timeout
    # [x]: the pattern does not match the command line of the shell that runs pgrep.
    while host.run("pgrep -f '[x]mpp-probe muc'").rc == 0:
        assert time.monotonic() < deadline, f"test clients still run after {timeout} s"
        time.sleep(0.5)


def start_container(name: str, image: str, network: str, timeout: float = 120) -> None:
    """Start container NAME from a lab image on the scenario's network, as _shared/create.yml starts the
    scenario's own, and wait until systemd in it has booted; then the lab's key lets testinfra and Ansible in
    (ssh_config reaches a container by its name)."""
    subprocess.run(["podman", "rm", "--force", "--ignore", name], check=True, capture_output=True)
    subprocess.run(
        [
            "podman",
            "run",
            "--detach",
            "--name",
            name,
            "--hostname",
            name,
            "--network",
            network,
            "--systemd",
            "always",
            "--cap-add",
            "SYS_ADMIN",
            "--label",
            "owner=molecule",
            image,
            "/sbin/init",
        ],
        check=True,
        capture_output=True,
    )
    # Until systemd has opened its bus, systemctl fails at once: ask again until it answers or time is up.
    deadline = time.monotonic() + timeout
    while True:
        booted = subprocess.run(
            [
                "timeout",
                str(int(timeout)),
                "podman",
                "exec",
                name,
                "systemctl",
                "is-system-running",
                "--wait",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if booted.stdout.strip() in ("running", "degraded") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    state = booted.stdout.strip()
    assert state in ("running", "degraded"), f"{name} did not boot: {state} {booted.stderr}"
    key = Path(os.environ["MEETOPS_LAB_HOME"]) / "lab-ssh" / "id_ed25519.pub"
    subprocess.run(
        [
            "podman",
            "exec",
            "--interactive",
            name,
            "sh",
            "-euc",
            "install -d -m 0700 /root/.ssh && cat > /root/.ssh/authorized_keys"
            " && chmod 0600 /root/.ssh/authorized_keys",
        ],
        input=key.read_bytes(),
        check=True,
        capture_output=True,
    )


def remove_container(name: str) -> None:
    """Remove a container start_container started (gone already: nothing to do)."""
    subprocess.run(
        ["podman", "rm", "--force", "--ignore", "--time", "5", name], check=True, capture_output=True
    )


def stored_password_file(namespace: str, account: str) -> Path:
    """The controller's file of ACCOUNT's generated password in the deployment NAMESPACE."""
    return Path(password_path(str(SECRETS_DIR), namespace, account))


def stored_password(namespace: str, account: str) -> str:
    """ACCOUNT's generated password in the deployment NAMESPACE, as the roles read it."""
    return stored_password_file(namespace, account).read_text().split(" salt=")[0].strip()


def inventory_args(extra_inventories: tuple[str, ...] = ()) -> list[str]:
    """-i for the scenario's inventory, then for each of EXTRA_INVENTORIES (hosts a test added)."""
    return [arg for path in (INVENTORY, *extra_inventories) for arg in ("-i", path)]


def run_module(
    host: str, module: str, args: dict, check: bool = False, extra_inventories: tuple[str, ...] = ()
) -> dict:
    """Run an Ansible module on one host of the scenario; its result (failed results included)."""
    argv = ["ansible", *inventory_args(extra_inventories), host, "-m", module, "-a", json.dumps(args)]
    if check:
        argv.append("--check")
    result = subprocess.run(
        argv, capture_output=True, text=True, check=False, env={**os.environ, **JSON_OUTPUT}
    )
    try:
        document = json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise AssertionError(
            f"ansible {module} on {host} printed no JSON: {result.stdout[-2000:]} {result.stderr[-2000:]}"
        ) from error
    return document["plays"][0]["tasks"][0]["hosts"][host]


def run_playbook(
    playbook: str,
    *args: str,
    extra_vars: dict | None = None,
    env: dict | None = None,
    extra_inventories: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    """ansible-playbook against the scenario's inventory (and EXTRA_INVENTORIES); the completed process."""
    argv = ["ansible-playbook", *inventory_args(extra_inventories), *args]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    argv.append(playbook)
    return subprocess.run(
        argv, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )


def pem_lines(text: str, label: str) -> list[str]:
    """The base64 lines of the PEM blocks in TEXT whose label ends with LABEL (e.g. PRIVATE KEY)."""
    lines, inside = [], False
    for line in (raw.strip() for raw in text.splitlines()):
        if re.fullmatch(rf"-----BEGIN ([A-Z]+ )*{label}-----", line):
            inside = True
        elif line.startswith("-----END "):
            inside = False
        elif inside and re.fullmatch(r"[A-Za-z0-9+/=]{8,}", line):
            lines.append(line)
    return lines


def pem_key_lines(text: str) -> list[str]:
    """The base64 lines of the PEM private keys in TEXT: each is enough to recognise its key. The armour,
    and whatever else the file holds (a certificate beside the key, comments), is no secret."""
    return pem_lines(text, "PRIVATE KEY")


def store_secrets() -> list[str]:
    """Every secret in the scenario's controller store: the generated passwords (TURN's shared secret among
    them) and the lines of the internal CAs' private keys."""
    secrets = [path.read_text().split(" salt=")[0].strip() for path in SECRETS_DIR.glob("*/passwords/*")]
    for key in SECRETS_DIR.glob("*/ca/*.key"):
        public = serialization.load_pem_private_key(key.read_bytes(), None).public_key()
        public_pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        secrets += private_lines(key.read_text(), public_pem)
    return sorted({secret for secret in secrets if len(secret) >= 8})


def private_lines(key_pem: str, public_pem: str) -> list[str]:
    """The lines of KEY_PEM's private key that are secret: an EC key's last line encodes its public point and
    can fall, base64-aligned, inside the public key's own PEM, which is public (printed by certificate
    reports, for one)."""
    public = "".join(pem_lines(public_pem, "PUBLIC KEY"))
    return [line for line in pem_key_lines(key_pem) if line not in public]


def host_private_key_lines(host) -> list[str]:
    """The lines of every private key the deployment put under /etc on HOST (the image's SSH host keys,
    which are the lab's, aside)."""
    found = host.run("grep -rlE --exclude-dir=ssh -- '-----BEGIN ([A-Z]+ )?PRIVATE KEY-----' /etc").stdout
    lines = []
    for path in found.split():
        public = host.run(f"openssl pkey -in {shlex.quote(path)} -pubout").stdout
        lines += private_lines(host.file(path).content_string, public)
    return lines


def files_with_secrets(host, secrets: list[str], readable_by_others: bool) -> list[str]:
    """The files on HOST that hold any of SECRETS: those any user may read (outside /usr, /proc, /sys and
    root's home), or with readable_by_others false every file under /etc."""
    listing = "/root/.meetops-test-secrets"
    encoded = base64.b64encode("\n".join(secrets).encode()).decode()
    host.check_output(f"umask 077; echo {encoded} | base64 -d > {listing}")
    try:
        if readable_by_others:
            search = (
                "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /usr -o -path /root \\) "
                "-prune -o -type f -perm -o=r -print0"
            )
        else:
            search = "find /etc -type f -print0"
        return host.run(f"{search} | xargs -0 -r grep -lF -f {listing}").stdout.split()
    finally:
        host.run(f"rm -f {listing}")


def secrets_in(text: str, secrets: list[str]) -> list[str]:
    """The SECRETS that TEXT contains, shortened so that a failure message does not print them whole."""
    return [f"{secret[:3]}...({len(secret)} characters)" for secret in secrets if secret in text]


def verify_table(output: str) -> dict[tuple[str, str, str], str]:
    """(host, component, check) -> status, from the table playbooks/verify.yml prints."""
    rows = {}
    for line in re.findall(r'^\s*"(.+)",?$', output, re.M):
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 4 and cells[3] in ("ok", "FAIL", "not installed"):
            rows[(cells[0], cells[1], cells[2])] = cells[3]
    return rows
