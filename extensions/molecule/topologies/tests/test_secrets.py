"""No secret in any output: playbooks/single.yml run with -vvv --diff on the one-host deployment, after the
files that hold its secrets were removed (so the run writes every one of them again and --diff has them to
show), prints none of the deployment's secrets, and no file another user can read holds one."""

from __future__ import annotations

import os
import re
from pathlib import Path

import testinfra.utils.ansible_runner
from meetops_test_helpers import (
    files_with_secrets,
    host_private_key_lines,
    run_playbook,
    secrets_in,
    store_secrets,
)

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
SINGLE = RUNNER.get_hosts("jitsi")[0]
PLAYBOOK = str(Path(__file__).resolve().parents[4] / "playbooks" / "single.yml")

# The run reaches the host itself.
testinfra_hosts = [SINGLE]


def test_a_verbose_diff_run_prints_no_secret_and_leaves_none_for_other_users(host):
    secrets = store_secrets() + host_private_key_lines(host)
    assert len(secrets) > 5, "the store and the host hold fewer secrets than a deployment has"
    holders = files_with_secrets(host, secrets, readable_by_others=False)
    # The files a deployment keeps its secrets in: Jicofo's and each bridge's configuration, the keys.
    assert any(path.endswith("jicofo.conf") for path in holders), holders
    assert any(path.endswith("jvb.conf") for path in holders), holders
    assert any(path.endswith(".key") for path in holders), holders
    host.check_output("rm -f " + " ".join(holders))

    result = run_playbook(PLAYBOOK, "--limit", SINGLE, "--diff", "-vvv")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(rf"^{re.escape(SINGLE)}\s*:.* changed=[1-9]", output, re.M), (
        "the run wrote nothing again"
    )
    # The keys were made anew: their lines are secrets too.
    secrets += host_private_key_lines(host)
    assert secrets_in(output, secrets) == []
    assert files_with_secrets(host, secrets, readable_by_others=True) == []
