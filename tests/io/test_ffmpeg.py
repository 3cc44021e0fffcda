"""The ffmpeg stdin pipe: a wide kernel buffer, so a frame crosses in a few pieces, not ~50."""
from __future__ import annotations

import fcntl
from pathlib import Path

import numpy as np

from vdp.io._ffmpeg import PIPE_BYTES, FfmpegPipe, widen_pipe


def test_encoder_pipes_hold_a_megabyte_and_carry_frames_whole():
    allowed = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    frame = np.arange(64 * 48 * 3, dtype=np.uint32).astype(np.uint8)
    pipe = FfmpegPipe.raw_video("rgb24", (48, 64), 24.0, ["-f", "null", "-"], timeout_s=60, what="test")
    try:
        assert fcntl.fcntl(pipe.process.stdin.fileno(), fcntl.F_GETPIPE_SZ) >= min(PIPE_BYTES, allowed)
        for _ in range(5):
            pipe.write([memoryview(frame)])
    finally:
        pipe.close()
    assert pipe.process.returncode == 0


def test_widen_pipe_answers_none_for_what_is_not_a_pipe(tmp_path):
    with open(tmp_path / "file", "wb") as f:
        assert widen_pipe(f) is None
    assert widen_pipe(None) is None
