"""Test-suite wide setup: every PassManager verifies the IR after each pass."""

import pytest

from compiler.pipeline import verify_each_by_default


@pytest.fixture(autouse=True)
def _verify_after_every_pass():
    """Turn on ``verify_each`` for all PassManagers created during a test."""
    with verify_each_by_default(True):
        yield
