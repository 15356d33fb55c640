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
    # CLGRAD_TEST_SEED (default 0) also shifts tests/*/helpers.py's generators: a flakiness hunt runs the
    # suite under several seeds; torch's generator is seeded too, for _perturb-style parameter draws
    s = int(os.environ.get("CLGRAD_TEST_SEED", "0"))
    np.random.seed(s)
    engine.manual_seed(s)
    if s:
        import torch
        torch.manual_seed(s)
    yield


@pytest.fixture
def device():
    """The device under test (CLGRAD_DEVICE selects it)."""
    return engine.get_default_device()
