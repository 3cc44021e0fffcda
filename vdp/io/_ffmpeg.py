"""The ffmpeg binary bundled with imageio-ffmpeg: one-shot runs and a raw-frame stdin pipe.

Every subprocess has a timeout; failures raise a named error carrying the tail of ffmpeg's
stderr, so the message says what ffmpeg objected to.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from typing import IO, Sequence

import imageio_ffmpeg

from vdp.errors import EncodeError, VdpError
from vdp.io._deadline import call_with_deadline

STDERR_TAIL_CHARS = 2000
Buffers = list[bytes | memoryview]  # one input's data, written in order without joining


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary (imageio-ffmpeg's bundled build, or ``IMAGEIO_FFMPEG_EXE``)."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def _tail(stderr: bytes | str) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    return text.strip()[-STDERR_TAIL_CHARS:]


def run_ffmpeg(args: list[str], *, timeout_s: float, what: str,
               error: type[VdpError] = EncodeError) -> bytes:
    """Run ``ffmpeg -nostdin -hide_banner -loglevel error <args>`` and return its stdout.

    Args:
        args: Arguments after the global options.
        timeout_s: Kill ffmpeg and fail after this many seconds.
        what: What the run does, for error messages.
        error: Error type to raise on failure.

    Returns:
        The bytes ffmpeg wrote to stdout.

    Raises:
        error: ffmpeg exited non-zero or ran past `timeout_s`.
    """
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise error(f"{what}: ffmpeg did not finish within {timeout_s:g} s; stderr: "
                    f"{_tail(exc.stderr or b'')}") from None
    if proc.returncode != 0:
        raise error(f"{what}: ffmpeg exited with code {proc.returncode}; stderr: "
                    f"{_tail(proc.stderr)}")
    return proc.stdout


#: Bytes the stdin pipe of an ffmpeg encoder holds (Linux's default is 64 KB: a 1080p frame then
#: crosses in ~50 pieces, each a switch between the writer and ffmpeg).
PIPE_BYTES = 1 << 20


def widen_pipe(pipe: IO[bytes] | None, nbytes: int = PIPE_BYTES) -> int | None:
    """Grow `pipe`'s kernel buffer to `nbytes` (at most the system's ``pipe-max-size``) where
    Linux allows it; returns the size it has (None where it cannot be asked)."""
    setsz, getsz = getattr(fcntl, "F_SETPIPE_SZ", None), getattr(fcntl, "F_GETPIPE_SZ", None)
    if pipe is None or setsz is None:
        return None
    try:
        return fcntl.fcntl(pipe.fileno(), setsz, nbytes)
    except OSError:  # above pipe-max-size for an unprivileged user, or not a pipe
        try:
            return fcntl.fcntl(pipe.fileno(), getsz)
        except OSError:
            return None


class FfmpegPipe:
    """An ffmpeg process fed raw frames on stdin, and on more pipes where it reads several
    inputs (stderr goes to a temp file, never a full pipe).

    Args:
        args: Arguments after the global options; input 0 must be ``-i -``, input k
            ``-i pipe:<fd>`` with fd the read end of ``extra_pipes[k-1]``.
        timeout_s: Deadline for each `write` and for `close`.
        what: What the process produces, for error messages.
        extra_pipes: ``(read, write)`` descriptor pairs (`os.pipe`) of inputs 1, 2, ...: the
            read ends go to ffmpeg, the write ends are written by `write`; all are owned here.
    """

    def __init__(self, args: list[str], *, timeout_s: float, what: str,
                 extra_pipes: Sequence[tuple[int, int]] = ()) -> None:
        self.timeout_s = timeout_s
        self.what = what
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
        try:
            self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                            stderr=self._stderr, pass_fds=[r for r, _ in extra_pipes])
        except BaseException:
            for fds in extra_pipes:
                for fd in fds:
                    os.close(fd)
            self._stderr.close()
            raise
        for read, _ in extra_pipes:
            os.close(read)  # ffmpeg holds its own copy
        self._inputs: list[IO[bytes] | None] = [self.process.stdin,
                                                *(open(w, "wb") for _, w in extra_pipes)]
        for pipe in self._inputs:
            widen_pipe(pipe)

    @classmethod
    def raw_video(cls, pix_fmt: str, size: tuple[int, int], fps: float, args: list[str], *,
                  timeout_s: float, what: str) -> "FfmpegPipe":
        """A pipe reading raw `pix_fmt` frames of `size` ``(H, W)`` at `fps`; `args`: the rest
        (codec options and the output)."""
        return cls.raw_videos([pix_fmt], size, fps, args, timeout_s=timeout_s, what=what)

    @classmethod
    def raw_videos(cls, pix_fmts: list[str], size: tuple[int, int], fps: float, args: list[str], *,
                   timeout_s: float, what: str) -> "FfmpegPipe":
        """Raw frames of `size` ``(H, W)`` at `fps` in several streams, ffmpeg's inputs 0, 1, ...
        (e.g. colour and an alpha matte, joined by a filter in `args`), one pipe each: send a
        frame to every stream before the next frame (`write_frames`)."""
        h, w = size
        extra = [os.pipe() for _ in pix_fmts[1:]]
        inputs: list[str] = []
        for i, pix_fmt in enumerate(pix_fmts):
            source = "-" if i == 0 else f"pipe:{extra[i - 1][0]}"
            inputs += ["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{w}x{h}", "-r", f"{fps!r}",
                       "-i", source]
        return cls([*inputs, *args], timeout_s=timeout_s, what=what, extra_pipes=extra)

    def stderr_tail(self) -> str:
        """The last lines ffmpeg wrote to stderr ("" once the pipe is closed)."""
        if self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return _tail(self._stderr.read())

    def _fail(self, problem: str) -> EncodeError:
        self._terminate()
        tail = self.stderr_tail()
        self._stderr.close()
        return EncodeError(f"{self.what}: {problem}; ffmpeg stderr: {tail}")

    def write(self, data: bytes | memoryview | Buffers) -> None:
        """Send raw bytes to ffmpeg's stdin (a list: its buffers in order, without joining them).

        Raises:
            EncodeError: ffmpeg has exited, closed its input, or did not accept the data in time.
        """
        self.write_frames([[data if isinstance(data, list) else [data]]])

    def write_frames(self, frames: list[Sequence[Buffers]]) -> None:
        """Send frames one after another, each as its buffers for inputs 0, 1, ... (a frame's
        streams interleaved, so ffmpeg never waits on one input while another is full).

        Raises:
            ValueError: A frame without exactly one list of buffers per input.
            EncodeError: ffmpeg has exited, closed an input, or did not accept the data in time.
        """
        if any(len(frame) != len(self._inputs) for frame in frames):
            raise ValueError(f"{self.what}: each frame needs buffers for each of the "
                             f"{len(self._inputs)} inputs")
        if any(pipe is None or pipe.closed for pipe in self._inputs):
            raise EncodeError(f"{self.what}: the ffmpeg pipe is already closed")
        if self.process.poll() is not None:
            raise self._fail(f"ffmpeg exited early with code {self.process.returncode}")

        def send() -> None:
            for frame in frames:
                for pipe, buffers in zip(self._inputs, frame):
                    pipe.writelines(buffers)
            for pipe in self._inputs:
                pipe.flush()
        try:
            call_with_deadline(send, self.timeout_s, f"{self.what}: writing to ffmpeg")
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise self._fail(f"ffmpeg stopped reading its input ({exc})") from None
        except VdpError as exc:
            raise self._fail(str(exc)) from None

    def close(self) -> None:
        """Close stdin and wait for ffmpeg to finish.

        Raises:
            EncodeError: ffmpeg failed or did not finish within the timeout.
        """
        self._close_inputs()
        try:
            code = self.process.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            raise self._fail(f"ffmpeg did not finish within {self.timeout_s:g} s") from None
        if code != 0:
            raise self._fail(f"ffmpeg exited with code {code}")
        self._stderr.close()

    def kill(self) -> None:
        """Stop ffmpeg now and drop its log (idempotent)."""
        self._terminate()
        self._stderr.close()

    def _terminate(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._close_inputs()

    def _close_inputs(self) -> None:
        for pipe in self._inputs:
            try:
                if pipe is not None and not pipe.closed:
                    pipe.close()
            except (BrokenPipeError, OSError):
                pass
