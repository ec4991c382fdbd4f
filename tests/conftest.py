"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from synthetic_pages import synthetic_form


@pytest.fixture
def make_form() -> Callable[..., tuple[np.ndarray, dict]]:
    return synthetic_form
