"""``python -m vdp.service [--host H] [--port P]``: the same as `vdp serve`."""
import sys

from vdp.service.server import main

sys.exit(main())
