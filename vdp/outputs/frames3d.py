"""Shared parts of the per-frame 3D outputs (EXR depth, PLY points): an atomic folder of one file
per frame, and the camera sidecar written next to it."""
from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Callable

from vdp.io.writers._atomic import AtomicOutput
from vdp.lift.camera import Intrinsics, intrinsics_for
from vdp.outputs.base import Output
from vdp.spec import OutputSpec
from vdp.types import FrameBatch, VideoInfo


class FrameFolder(AtomicOutput):
    """A folder that appears atomically, filled one file per frame by `write_file`."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, is_dir=True)

    def write_file(self, name: str, write: Callable[[str], None]) -> None:
        """Call ``write(temp_file_path)`` for the file `name` inside the folder."""
        def run() -> None:
            write(str(Path(self.tmp_path) / name))
            self.frames_written += 1
        self._guarded(run)


class PerFrameOutput(Output):
    """Base of outputs writing ``<name>/<prefix>_<frame:06d>.<ext>`` plus ``<name>.json`` (camera,
    depth kind, units)."""

    prefix = "frame"
    ext = "bin"

    def __init__(self, spec: OutputSpec, path: Path, info: VideoInfo, *, depth_kind: str = "relative",
                 synthetic: bool = False, camera: object = None, **_: object) -> None:
        super().__init__(spec, path, info)
        self.depth_kind = depth_kind
        self.synthetic = synthetic
        self.camera = camera
        self.folder = FrameFolder(path)
        self.intrinsics: Intrinsics | None = None
        self.first_frame: int | None = None

    def camera_for(self, height: int, width: int) -> Intrinsics:
        """The camera for depth maps of ``height x width`` (the spec's, given for the input's size)."""
        if self.intrinsics is None:
            self.intrinsics = intrinsics_for(self.camera, self.info.width, self.info.height).scaled(width, height)
        return self.intrinsics

    def write(self, batch: FrameBatch) -> None:
        depth = batch.layers["depth"].float().cpu()
        intr = self.camera_for(int(depth.shape[-2]), int(depth.shape[-1]))
        if self.first_frame is None and len(batch):
            self.first_frame = int(batch.indices[0])
        for i in range(len(batch)):
            index = int(batch.indices[i])
            self.folder.write_file(f"{self.prefix}_{index:06d}.{self.ext}",
                                   lambda p, i=i: self.write_frame(p, batch, i, depth[i], intr))

    @abstractmethod
    def write_frame(self, path: str, batch: FrameBatch, i: int, depth, intr: Intrinsics) -> None:
        """Write frame `i` of `batch` (its float depth `depth`, camera `intr`) to `path`."""

    def sidecar(self) -> dict:
        """Fields of ``<name>.json`` besides the intrinsics."""
        return {"depth_kind": self.depth_kind,
                "unit": "metres" if self.depth_kind == "metric" else "relative inverse depth (larger = nearer)",
                "frames": self.folder.frames_written, "first_frame": self.first_frame,
                "source_size": [self.info.width, self.info.height],
                "file_pattern": f"{self.prefix}_{{frame:06d}}.{self.ext}", "synthetic_weights": self.synthetic}

    def close(self) -> Path:
        self.folder.close()
        if self.intrinsics is None:
            self.intrinsics = intrinsics_for(self.camera, self.info.width, self.info.height)
        self.intrinsics.write_json(self.path.with_name(self.path.name + ".json"), **self.sidecar())
        return self.path

    def abort(self) -> None:
        self.folder.abort()
