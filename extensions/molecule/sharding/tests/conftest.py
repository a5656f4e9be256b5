"""Fixtures shared by the sharding scenario's test files."""

from __future__ import annotations

import pytest
from meetops_test_helpers import on
from test_sharding import LBS


@pytest.fixture(scope="module")
def addresses() -> dict[str, str]:
    """Each HAProxy peer's address on the scenario's network."""
    return {lb: on(lb).check_output("hostname -I").split()[0] for lb in LBS}
