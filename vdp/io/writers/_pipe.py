"""Base of the writers whose encoder is an ffmpeg process fed raw frames on stdin."""
from __future__ import annotations

from vdp.errors import EncodeError
from vdp.io._ffmpeg import FfmpegPipe
from vdp.io.writers._atomic import AtomicOutput


class PipeWriter(AtomicOutput):
    """An atomic output encoded by the ffmpeg pipe `_pipe` (a subclass starts it on its first
    write); finishing waits for ffmpeg, aborting kills it."""

    _pipe: FfmpegPipe | None = None

    def _finalize(self) -> None:
        if self._pipe is None:
            raise EncodeError(f"{self.path}: no frames were written")
        pipe, self._pipe = self._pipe, None
        pipe.close()

    def _discard(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.kill()
