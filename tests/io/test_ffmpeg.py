"""The ffmpeg pipes: a wide kernel buffer, so a frame crosses in a few pieces, not ~50; several
inputs fed frame by frame in step; every pipe closed after."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

import numpy as np
import pytest

from vdp.errors import EncodeError
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


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_two_inputs_carry_frames_in_step_and_their_pipes_are_closed(tmp_path):
    """Input 0 on stdin, input 1 on a second pipe: hstack shows frame k of both side by side."""
    before = _open_fds()
    left = [np.full((16, 24), 10 * k, np.uint8) for k in range(6)]
    right = [np.full((16, 24), 200 - 10 * k, np.uint8) for k in range(6)]
    out = tmp_path / "both.gray"
    pipe = FfmpegPipe.raw_videos(["gray", "gray"], (16, 24), 24.0,
                                 ["-filter_complex", "[0:v][1:v]hstack", "-f", "rawvideo",
                                  "-pix_fmt", "gray", str(out)], timeout_s=60, what="test")
    for first in (0, 3):
        pipe.write_frames([[[memoryview(left[k]).cast("B")], [memoryview(right[k]).cast("B")]]
                           for k in range(first, first + 3)])
    pipe.close()
    got = np.fromfile(out, np.uint8).reshape(6, 16, 48)
    assert np.array_equal(got, np.concatenate([np.stack(left), np.stack(right)], axis=2))
    assert _open_fds() == before


def test_a_frame_without_data_for_every_input_is_refused(tmp_path):
    pipe = FfmpegPipe.raw_videos(["gray", "gray"], (8, 8), 24.0,
                                 ["-filter_complex", "[0:v][1:v]hstack", "-f", "null", "-"],
                                 timeout_s=60, what="test")
    try:
        with pytest.raises(ValueError, match="each of the 2 inputs"):
            pipe.write([memoryview(np.zeros(64, np.uint8))])
    finally:
        pipe.kill()


def test_ffmpeg_that_stopped_is_encode_error_with_several_inputs(tmp_path):
    pipe = FfmpegPipe.raw_videos(["gray", "gray"], (8, 8), 24.0,
                                 ["-filter_complex", "[0:v][1:v]hstack", "-f", "null", "-"],
                                 timeout_s=60, what="encoding test")
    pipe.process.kill()
    pipe.process.wait(timeout=10)
    frame = [[memoryview(np.zeros(64, np.uint8))]] * 2
    with pytest.raises(EncodeError, match="encoding test: ffmpeg exited early"):
        pipe.write_frames([frame])
