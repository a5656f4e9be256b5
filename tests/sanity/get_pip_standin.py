"""Local stand-in for ansible-test's pip bootstrap script (get-pip.py), which it downloads from
ci-files.testing.ansible.com, unreachable from the lab. lab/setup puts it where ansible-test caches that
download (~/.ansible/test/cache/get_pip_<version>.py). It gives the new virtual environment pip from
Python's own ensurepip, then installs the packages ansible-test asked for (pip==<its version>) from the
package index, as get-pip.py would. What the sanity tests check does not change."""

from __future__ import annotations

import ensurepip
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
# get-pip.py takes pip's options and package specs, and options of its own (--no-setuptools, --no-wheel).
specs = [argument for argument in sys.argv[1:] if not argument.startswith("-")]
if specs:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *specs], check=True
    )
