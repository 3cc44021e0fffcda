"""Run a blocking call with a deadline, so a stuck decoder or pipe never hangs the caller."""
from __future__ import annotations

import threading
from typing import Callable, TypeVar

from vdp.errors import JobTimeoutError

T = TypeVar("T")


def call_with_deadline(fn: Callable[[], T], timeout_s: float, what: str) -> T:
    """Call `fn()` in a daemon thread and wait at most `timeout_s` seconds for it.

    The decoders and pipes used here release the GIL while they block, so the caller
    regains control on time. A call that overruns is abandoned (its daemon thread cannot be
    killed); the object it used must not be used again.

    Args:
        fn: The call to make.
        timeout_s: Deadline in seconds (> 0).
        what: Describes the call for the error message, e.g. ``"decoding frames 0-15 of x.mp4"``.

    Returns:
        Whatever `fn` returns; an exception raised by `fn` is re-raised here.

    Raises:
        JobTimeoutError: `fn` did not return within `timeout_s`.
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    result: dict[str, object] = {}
    done = threading.Event()

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name=f"vdp-deadline: {what[:60]}", daemon=True).start()
    if not done.wait(timeout_s):
        raise JobTimeoutError(f"{what} did not finish within {timeout_s:g} s")
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]  # type: ignore[return-value]
