"""Shared test fixtures."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from flows.environment import configure_prefect
from synthetic_pages import synthetic_form

# Prefect reads its settings on import: its home (database, cached task results) is this test
# process's own (one per xdist worker), in a temporary folder.
_PREFECT_DATA = Path(tempfile.mkdtemp(prefix="formscan-prefect-"))
atexit.register(shutil.rmtree, _PREFECT_DATA, ignore_errors=True)
configure_prefect(_PREFECT_DATA)


@pytest.fixture
def make_form() -> Callable[..., tuple[np.ndarray, dict]]:
    return synthetic_form


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """Prefect's local test server, started once per test session (per xdist worker); its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()
