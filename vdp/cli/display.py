"""Live progress on the terminal: one line per stage with frames, fps and ETA."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from vdp.engine.progress import StageProgress


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    m, s = divmod(int(seconds + 0.5), 60)
    return f"{m // 60:d}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m:02d}:{s:02d}"


def format_line(p: StageProgress) -> str:
    total = p.frames_total if p.frames_total is not None else "?"
    return (f"  {p.stage:<8} {p.frames_done:>7}/{total:<7} {p.fps:7.2f} fps (own {p.busy_fps:.1f})  "
            f"ETA {_fmt_eta(p.eta_seconds)}")


class ProgressDisplay:
    """A progress callback that redraws in place on a TTY and prints sparse lines otherwise.

    Args:
        stream: Where to draw (default stderr).
        plain_interval_s: Seconds between lines when the stream is not a terminal.
    """

    def __init__(self, stream: TextIO | None = None, plain_interval_s: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.plain_interval_s = plain_interval_s
        self._drawn = 0
        self._last_plain = 0.0

    def __call__(self, progress: list[StageProgress]) -> None:
        lines = [format_line(p) for p in progress]
        if self.tty:
            if self._drawn:
                self.stream.write(f"\x1b[{self._drawn}F")
            self.stream.write("".join(f"\x1b[2K{line}\n" for line in lines))
            self._drawn = len(lines)
        elif time.monotonic() - self._last_plain >= self.plain_interval_s:
            self._last_plain = time.monotonic()
            self.stream.write(" | ".join(l.strip() for l in lines) + "\n")
        self.stream.flush()
