"""The SDK's name for the wire types: they live in the neutral `vdp.api` (shared with the gateway)."""
from vdp.api import *  # noqa: F401,F403
from vdp.api import __all__  # noqa: F401
