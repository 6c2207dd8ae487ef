"""Shared test settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The test models are tiny: on a 2-core machine several torch threads only contend with each other and
    with the subprocesses some tests start (10-40x slower under load), so every test runs on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
