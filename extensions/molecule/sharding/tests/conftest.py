"""Fixtures shared by the sharding scenario's test files."""

from __future__ import annotations

import pytest
from meetops_test_helpers import on
from test_sharding import LBS, SHARDS


@pytest.fixture(scope="module")
def addresses() -> dict[str, str]:
    """Each host's address on the scenario's network (the HAProxy peers and the shards)."""
    return {host: on(host).check_output("hostname -I").split()[0] for host in (*LBS, *SHARDS)}
