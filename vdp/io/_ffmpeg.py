"""The ffmpeg binary bundled with imageio-ffmpeg: one-shot runs and a raw-frame stdin pipe.

Every subprocess has a timeout; failures raise a named error carrying the tail of ffmpeg's
stderr, so the message says what ffmpeg objected to.
"""
from __future__ import annotations

import fcntl
import subprocess
import tempfile
from typing import IO

import imageio_ffmpeg

from vdp.errors import EncodeError, VdpError
from vdp.io._deadline import call_with_deadline

STDERR_TAIL_CHARS = 2000


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
    """An ffmpeg process fed raw frames on stdin (stderr goes to a temp file, never a full pipe).

    Args:
        args: Arguments after the global options; the input must be ``-i -``.
        timeout_s: Deadline for each `write` and for `close`.
        what: What the process produces, for error messages.
    """

    def __init__(self, args: list[str], *, timeout_s: float, what: str) -> None:
        self.timeout_s = timeout_s
        self.what = what
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=self._stderr)
        widen_pipe(self.process.stdin)

    @classmethod
    def raw_video(cls, pix_fmt: str, size: tuple[int, int], fps: float, args: list[str], *,
                  timeout_s: float, what: str) -> "FfmpegPipe":
        """A pipe reading raw `pix_fmt` frames of `size` ``(H, W)`` at `fps`; `args`: the rest
        (codec options and the output)."""
        h, w = size
        return cls(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{w}x{h}", "-r", f"{fps!r}", "-i", "-",
                    *args], timeout_s=timeout_s, what=what)

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

    def write(self, data: bytes | memoryview | list[bytes | memoryview]) -> None:
        """Send raw bytes to ffmpeg's stdin (a list: its buffers in order, without joining them).

        Raises:
            EncodeError: ffmpeg has exited, closed its input, or did not accept the data in time.
        """
        stdin = self.process.stdin
        if stdin is None or stdin.closed:
            raise EncodeError(f"{self.what}: the ffmpeg pipe is already closed")
        if self.process.poll() is not None:
            raise self._fail(f"ffmpeg exited early with code {self.process.returncode}")
        try:
            buffers = data if isinstance(data, list) else [data]
            call_with_deadline(lambda: (stdin.writelines(buffers), stdin.flush()), self.timeout_s,
                               f"{self.what}: writing to ffmpeg")
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise self._fail(f"ffmpeg stopped reading its input ({exc})") from None
        except VdpError as exc:
            raise self._fail(str(exc)) from None

    def close(self) -> None:
        """Close stdin and wait for ffmpeg to finish.

        Raises:
            EncodeError: ffmpeg failed or did not finish within the timeout.
        """
        try:
            if self.process.stdin is not None and not self.process.stdin.closed:
                self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
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
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except (BrokenPipeError, OSError):
                pass
