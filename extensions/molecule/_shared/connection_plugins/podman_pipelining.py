# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""The lab's connection to its Podman containers: one ``podman exec`` per module, modules piped on stdin."""

from __future__ import annotations

DOCUMENTATION = r"""
name: podman_pipelining
short_description: Run tasks in a local Podman container, one C(podman exec) per module
description:
  - The test lab's connection to the containers Molecule starts. It differs from C(containers.podman.podman)
    in one way that matters for the suite's run time - it supports pipelining, so a module is piped to the
    container's Python on stdin with one C(podman exec -i), instead of a temporary directory made, a file
    copied in and a second C(podman exec) to run it.
  - Files (templates, copies) go in and out with C(podman cp).
author: meetops.jitsi maintainers (@meetops)
options:
  remote_addr:
    description: The container's name or ID.
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
  remote_user:
    description: The user that runs commands in the container (the image's default user when unset).
    vars:
      - name: ansible_user
  podman_executable:
    description: The podman program.
    default: podman
    vars:
      - name: ansible_podman_executable
"""

import shlex
import subprocess

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible.utils.display import Display

display = Display()


class Connection(ConnectionBase):
    """Commands through ``podman exec --interactive``; files through ``podman cp``."""

    transport = "podman_pipelining"
    has_pipelining = True

    def _connect(self) -> Connection:
        super()._connect()
        self._connected = True
        return self

    def _podman(self, args: list[str], in_data: bytes | None = None) -> tuple[int, bytes, bytes]:
        argv = [self.get_option("podman_executable"), *args]
        display.vvv(f"RUN {argv}", host=self.get_option("remote_addr"))
        try:
            process = subprocess.run(argv, input=in_data, capture_output=True, check=False)
        except OSError as error:
            raise AnsibleError(f"cannot run {argv[0]!r} (podman_executable): {error}") from error
        return process.returncode, process.stdout, process.stderr

    @ensure_connect
    def exec_command(
        self, cmd: str, in_data: bytes | None = None, sudoable: bool = True
    ) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec", "--interactive"]
        if self.get_option("remote_user"):
            args += ["--user", self.get_option("remote_user")]
        args += [self.get_option("remote_addr"), *shlex.split(to_text(cmd, errors="surrogate_or_strict"))]
        return self._podman(args, in_data or b"")

    def _copy(self, source: str, destination: str) -> None:
        rc, _stdout, stderr = self._podman(["cp", source, destination])
        if rc != 0:
            raise AnsibleError(f"podman cp {source} {destination} failed: {to_text(stderr).strip()}")

    @ensure_connect
    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        self._copy(in_path, f"{self.get_option('remote_addr')}:{out_path}")
        user = self.get_option("remote_user")
        if user:
            rc, _stdout, stderr = self.exec_command(shlex.join(["chown", user, out_path]))
            if rc != 0:
                raise AnsibleError(f"cannot give {out_path} to {user}: {to_text(stderr)}")

    @ensure_connect
    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        self._copy(f"{self.get_option('remote_addr')}:{in_path}", out_path)

    def close(self) -> None:
        super().close()
        self._connected = False
