"""The Output contract: one file or folder written incrementally from frame batches."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from vdp.spec import OutputSpec
from vdp.types import FrameBatch, VideoInfo


class Output(ABC):
    """Writes one output from the batches a job produces, in frame order.

    Subclasses open their writer lazily on the first batch (frame size known), write each
    batch as it arrives, and make the result appear atomically on `close`.

    Args:
        spec: The output's spec (kind, name, options).
        path: Final path of the file or folder.
        info: The source video's metadata (fps, size, audio).

    `open_outputs` also passes every output the job's ``num_frames``, ``depth_kind``,
    ``synthetic`` (weights) and ``camera`` (`vdp.spec.CameraSpec` or None) as keywords; an
    output takes the ones it uses. The layers it reads
    are declared in its `vdp.catalog` entry.
    """

    #: The output muxes the source's audio (joined parts get it once, `vdp.outputs.parts`).
    carries_audio = False

    def __init__(self, spec: OutputSpec, path: Path, info: VideoInfo) -> None:
        self.spec = spec
        self.path = path
        self.info = info

    @abstractmethod
    def write(self, batch: FrameBatch) -> None:
        """Append the batch's frames. Nothing of `batch` is kept once this returns (what is
        encoded later is copied first): the caller may reuse its tensors."""

    @abstractmethod
    def close(self) -> Path:
        """Finish and publish the output under `path`; returns `path`."""

    @abstractmethod
    def abort(self) -> None:
        """Discard everything written; nothing appears under `path`."""

    def fixed_ranges(self) -> dict:
        """Value ranges this output fixed from the first frames it wrote (e.g. a colour range),
        so that outputs written in parts by other chunks use the same (`adopt_ranges`)."""
        return {}

    def adopt_ranges(self, ranges: dict) -> None:
        """Use `ranges` (another instance's `fixed_ranges`) instead of fixing them from the
        first frames this instance writes."""


class WriterOutput(Output):
    """An output backed by one `vdp.io` writer, opened by the subclass on the first batch."""

    def __init__(self, spec: OutputSpec, path: Path, info: VideoInfo) -> None:
        super().__init__(spec, path, info)
        self.writer = None

    def close(self) -> Path:
        if self.writer is not None:
            self.writer.close()
        return self.path

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
