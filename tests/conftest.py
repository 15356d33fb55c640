import os

import numpy as np
import pytest

import engine


def pytest_report_header(config):
    from engine.runtime.device import default_device
    d = default_device()
    return f"clgrad device: cl:{d.index} {d.name} ({d.platform_name}); CLGRAD_DEVICE={os.environ.get('CLGRAD_DEVICE')}"


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)
    engine.manual_seed(0)
    yield


@pytest.fixture
def device():
    """The device under test (CLGRAD_DEVICE selects it)."""
    return engine.get_default_device()
