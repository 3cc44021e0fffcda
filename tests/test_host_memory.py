import subprocess
import sys

from contextlib import nullcontext

import vdp.host_memory as host_memory
from vdp.host_memory import return_large_buffers, reuse_for_frames

CHILD = """
import sys
from contextlib import nullcontext

import vdp.host_memory as host_memory
from vdp.host_memory import return_large_buffers, reuse_for_frames
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


TOP_CHILD = """
from vdp.host_memory import return_large_buffers

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

assert return_large_buffers()
base = rss_mb()
buf = bytearray(8 << 20)    # a frame-sized buffer: from the heap
del buf                     # freed at the heap's top: kept for the next frame
kept = rss_mb() - base
buf = bytearray(8 << 20)
print(kept, rss_mb() - base)
"""


def test_a_freed_frame_sized_heap_buffer_stays_for_the_next_frame():
    out = subprocess.run([sys.executable, "-c", TOP_CHILD], capture_output=True, text=True, timeout=60, check=True)
    kept, again = map(float, out.stdout.split())
    assert kept > 6  # glibc's 128 KB trim threshold would have handed it back
    assert again - kept < 2  # the next buffer takes those pages


PRELUDE = """
import time
import vdp.host_memory as host_memory
from vdp.host_memory import return_large_buffers, reuse_freed_memory

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

def touched(mb):
    buf = bytearray(mb << 20)
    buf[::4096] = b"x" * len(buf[::4096])  # every page
    return buf
"""

REUSE_CHILD = PRELUDE + """
host_memory.TRIM_AFTER_IDLE_S = 2.0  # long enough that a busy machine measures `between` first

assert return_large_buffers()
base = rss_mb()
with reuse_freed_memory():
    buf = touched(64)
    del buf                 # freed inside: stays in the heap
    kept = rss_mb() - base
    keep = touched(64)      # served from the kept block: no new pages
    again = rss_mb() - base
del keep                    # freed between blocks: kept for the next one too
between = rss_mb() - base
with reuse_freed_memory():  # the next call, soon after: finds the pages
    keep = touched(64)
    reused = rss_mb() - base
del keep
deadline = time.monotonic() + 30  # no block for longer than TRIM_AFTER_IDLE_S: handed back
while rss_mb() - base >= 15 and time.monotonic() < deadline:
    time.sleep(0.1)
trimmed = rss_mb() - base
buf = touched(64)
del buf                     # outside: mapped and returned at once, as before
print(kept, again, between, reused, trimmed, rss_mb() - base)
"""


def test_freed_memory_is_kept_while_blocks_follow_and_handed_back_once_idle():
    out = subprocess.run([sys.executable, "-c", REUSE_CHILD], capture_output=True, text=True,
                         timeout=60, check=True)
    kept, again, between, reused, trimmed, after = map(float, out.stdout.split())
    assert kept > 50  # the freed 64 MB stayed resident
    assert again < kept + 10  # and served the next 64 MB
    assert between > 50 and reused < kept + 10  # kept between blocks, and served the next block
    assert trimmed < 15 and after < 15


LONG_CALL_CHILD = PRELUDE + """
host_memory.TRIM_AFTER_IDLE_S = 0.5
assert return_large_buffers()
base = rss_mb()
with reuse_freed_memory():  # a 1 s stage call: the next may come after others' 1 s calls
    buf = touched(64)
    time.sleep(1.0)
ended = time.monotonic()
del buf
time.sleep(1.5)             # past TRIM_AFTER_IDLE_S, before IDLE_FACTOR x the call
waiting = rss_mb() - base
while rss_mb() - base >= 15 and time.monotonic() < ended + 30:
    time.sleep(0.05)
print(waiting, rss_mb() - base, time.monotonic() - ended, host_memory.trim_delay_s())
"""


def test_the_trim_waits_longer_after_long_calls():
    out = subprocess.run([sys.executable, "-c", LONG_CALL_CHILD], capture_output=True, text=True,
                         timeout=60, check=True)
    waiting, trimmed, after_s, delay_now = map(float, out.stdout.split())
    assert waiting > 50  # still kept 1.5 s after the call, past the 0.5 s minimum
    assert trimmed < 15 and after_s >= host_memory.IDLE_FACTOR * 1.0  # handed back after 3 x 1 s
    assert delay_now == 0.5  # and the longest call is forgotten with the trim


def test_large_frames_do_not_open_a_reuse_block():
    assert isinstance(reuse_for_frames(7680 * 4320), nullcontext)
    assert isinstance(reuse_for_frames(0), nullcontext)
    with reuse_for_frames(1920 * 1080):
        assert host_memory._reusing == 1
    assert host_memory._reusing == 0


FORK_CHILD = """
import os, time
import vdp.host_memory as host_memory
from vdp.host_memory import reuse_freed_memory

with reuse_freed_memory():
    pass                        # the trimming thread is running now
with host_memory._wake:         # fork while the module's lock is held (as during a trim)
    pid = os.fork()
    if pid == 0:
        with reuse_freed_memory():  # the child's own lock: no deadlock
            pass
        os._exit(0 if host_memory._trimmer is not None else 3)
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print(os.waitstatus_to_exitcode(status))
        break
    time.sleep(0.05)
else:
    os.kill(pid, 9)
    print("hung")
"""


def test_a_forked_child_gets_its_own_lock_and_trimming_thread():
    out = subprocess.run([sys.executable, "-c", FORK_CHILD], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.split() == ["0"]
