"""Checking the device a job asks for before anything loads (`require_device`)."""
from __future__ import annotations

import os

from vdp.errors import VdpError


class DeviceUnavailableError(VdpError):
    """The job asks for a device this machine cannot provide (``--device cuda`` without CUDA)."""


def require_device(device: str, *, local: bool) -> None:
    """Fail in one line when a local job asks for CUDA and torch cannot use it.

    Jobs on a Ray cluster (``RAY_ADDRESS`` set) are checked against the cluster's GPUs when
    their actors are placed (`vdp.engine.placement.check_resources`); local jobs and jobs on
    an embedded Ray instance run on this machine and are checked here.

    Raises:
        DeviceUnavailableError: ``device == "cuda"``, the job runs on this machine, and CUDA is
            unusable here (the message says why, as `vdp doctor` does).
    """
    if device != "cuda" or (not local and os.environ.get("RAY_ADDRESS", "local") != "local"):
        return
    from vdp.doctor import cuda_status

    status = cuda_status()
    if not status["available"]:
        raise DeviceUnavailableError(f"resources.device is 'cuda' but {status['reason']}; use "
                                     f"--device cpu or auto (`vdp doctor` shows what is missing)")
