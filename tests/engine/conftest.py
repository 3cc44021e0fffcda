"""Engine fixtures: a local Ray instance with fake GPUs, and a clean slate of vdp actors."""
from __future__ import annotations

import pytest

FAKE_GPUS = 4


@pytest.fixture(scope="session")
def ray_local():
    """A private local Ray instance with 4 CPUs and 4 *fake* GPUs (shadows the root fixture).

    Ray hands out GPU ids, torch sees no CUDA, so GPU actors run on the CPU: placement,
    replicas and per-GPU pinning are exercised without hardware.
    """
    import ray

    import tests.engine.stages_for_tests as test_stages

    ray.cloudpickle.register_pickle_by_value(test_stages)
    if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) < FAKE_GPUS:
        ray.shutdown()
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=4, num_gpus=FAKE_GPUS, include_dashboard=False,
                 namespace="vdp", logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture
def fresh_actors(ray_local):
    """Kill every vdp actor before and after the test (their fake GPUs go back to the pool)."""
    from vdp.engine.placement import release_actors

    release_actors()
    yield ray_local
    release_actors()
