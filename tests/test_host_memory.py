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


REUSE_CHILD = """
from vdp.host_memory import return_large_buffers, reuse_freed_memory

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

def touched(mb):
    buf = bytearray(mb << 20)
    buf[::4096] = b"x" * len(buf[::4096])  # every page
    return buf

assert return_large_buffers()
base = rss_mb()
with reuse_freed_memory(trim=False):
    buf = touched(64)
    del buf                 # freed inside: stays in the heap
    kept = rss_mb() - base
    keep = touched(64)      # served from the kept block: no new pages
    again = rss_mb() - base
    del keep
with reuse_freed_memory():
    pass                    # leaving a trimming block hands the free pages back
trimmed = rss_mb() - base
buf = touched(64)
del buf                     # outside: mapped and returned at once, as before
print(kept, again, trimmed, rss_mb() - base)
"""


def test_freed_memory_is_reused_inside_the_block_and_handed_back_when_trimmed():
    out = subprocess.run([sys.executable, "-c", REUSE_CHILD], capture_output=True, text=True,
                         timeout=60, check=True)
    kept, again, trimmed, after = map(float, out.stdout.split())
    assert kept > 50  # the freed 64 MB stayed resident
    assert again < kept + 10  # and served the next 64 MB
    assert trimmed < 15 and after < 15
