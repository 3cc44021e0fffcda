"""``python -m vdp.service [--host H] [--port P]``: the same as `vdp serve`."""
import sys

from vdp.cli.service import main_serve

sys.exit(main_serve())
