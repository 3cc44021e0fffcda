"""Shared fixtures: test resources, a local Ray instance, hardware gates."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

RESOURCES = Path(__file__).parent / "resources"
MEDIA = RESOURCES / "media"

torch.set_num_threads(int(os.environ.get("VDP_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def ray_local():
    """A private local Ray instance for the whole session (never joins a running cluster)."""
    import ray

    import tests.engine.stages_for_tests as test_stages

    ray.cloudpickle.register_pickle_by_value(test_stages)
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=4, include_dashboard=False, namespace="vdp",
                 logging_level="ERROR")
    yield ray
    ray.shutdown()


needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available() and os.environ.get("VDP_REQUIRE_GPU") != "1",
    reason="needs a CUDA GPU",
)
