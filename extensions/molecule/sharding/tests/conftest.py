"""Fixtures shared by the sharding scenario's test files."""

from __future__ import annotations

import pytest
from meetops_test_helpers import address_of
from test_sharding import LBS, SHARDS


@pytest.fixture(scope="module")
def addresses() -> dict[str, str]:
    """Each host's address on the scenario's network (the HAProxy peers and the shards)."""
    return {host: address_of(host) for host in (*LBS, *SHARDS)}
