import subprocess
import sys

from vdp.host_memory import return_large_buffers

CHILD = """
import sys
from vdp.host_memory import return_large_buffers
if sys.argv[1] == "fixed":
    assert return_large_buffers()

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

big = bytearray(30 << 20)   # mapped; freeing it raises glibc's default threshold to 30 MB
del big
before = rss_mb()
buf = bytearray(20 << 20)   # heap or mapped, depending on the threshold
del buf
print(rss_mb() - before)
"""


def _kept_mb(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                         timeout=60, check=True)
    return float(out.stdout)


def test_a_freed_frame_sized_buffer_goes_back_to_the_system():
    assert return_large_buffers()
    assert return_large_buffers()  # idempotent
    assert _kept_mb("default") > 15  # glibc alone keeps the 20 MB buffer resident
    assert _kept_mb("fixed") < 5
