"""Array writers: one ``[N,...]`` array per file, filled batch by batch.

Both need the frame count up front (the ``.npy`` header holds the full shape and is written
first): `NpyWriter` preallocates the file with ``numpy.lib.format.open_memmap`` and copies
each batch into its slot (memory stays at one batch; pages go to the file), `NpzWriter`
streams the header and then each batch's bytes into a zip member. `close()` fails when the
number of frames written differs from `num_frames`, so a short result is never published.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import os
import zipfile
from typing import IO, Any

import numpy as np
import torch

from vdp.errors import EncodeError
from vdp.io.writers._atomic import AtomicOutput, as_array


class _ArrayOutput(AtomicOutput, ABC):
    def __init__(self, path: str | os.PathLike[str], *, num_frames: int) -> None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        super().__init__(path)
        self.num_frames = int(num_frames)
        self.frame_shape: tuple[int, ...] | None = None
        self.dtype: np.dtype[Any] | None = None

    def write(self, frames: np.ndarray | torch.Tensor) -> None:
        """Append frames.

        Args:
            frames: ``[T,...]`` with the same dtype and frame shape as the first batch.

        Raises:
            ValueError: Dtype/shape differ from the first batch, or too many frames.
            EncodeError: Writing failed (the output is aborted).
        """
        arr = self._checked(frames)

        def run() -> None:
            self._append(arr)
            self.frames_written += arr.shape[0]
        self._guarded(run)

    @abstractmethod
    def _append(self, arr: np.ndarray) -> None:
        """Store `arr` after the frames written so far."""

    def _checked(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        arr = as_array(frames, name="frames")
        if arr.ndim < 1:
            raise ValueError("frames must be [T,...], got a scalar")
        if self.frame_shape is not None and (arr.shape[1:] != self.frame_shape
                                             or arr.dtype != self.dtype):
            expected = ",".join(map(str, self.frame_shape))
            raise ValueError(f"frames must be {self.dtype} [T,{expected}] like the first batch, "
                             f"got {arr.dtype} {arr.shape}")
        if self.frames_written + arr.shape[0] > self.num_frames:
            raise ValueError(f"{self.path}: {self.frames_written} + {arr.shape[0]} frames exceed "
                             f"num_frames={self.num_frames}")
        return arr

    def _shape(self, arr: np.ndarray) -> tuple[int, ...]:
        self.frame_shape, self.dtype = arr.shape[1:], arr.dtype
        return (self.num_frames, *arr.shape[1:])

    def _check_complete(self) -> None:
        if self.frames_written != self.num_frames:
            raise EncodeError(f"{self.path}: {self.frames_written} of {self.num_frames} frames "
                              f"were written; refusing to publish a short array")


class NpyWriter(_ArrayOutput):
    """A single ``.npy`` holding ``[num_frames, ...]``, filled in place through a memmap.

    Args:
        path: Output ``.npy`` file.
        num_frames: Total frames; shape and dtype of a frame come from the first batch.
    """

    def __init__(self, path: str | os.PathLike[str], *, num_frames: int) -> None:
        super().__init__(path, num_frames=num_frames)
        self._memmap: np.memmap | None = None

    def _append(self, arr: np.ndarray) -> None:
        if self._memmap is None:
            self._memmap = np.lib.format.open_memmap(self.tmp_path, mode="w+",
                                                     dtype=arr.dtype, shape=self._shape(arr))
        self._memmap[self.frames_written:self.frames_written + arr.shape[0]] = arr

    def _finalize(self) -> None:
        self._check_complete()
        if self._memmap is not None:  # always, once every frame is written
            self._memmap.flush()
        self._memmap = None

    def _discard(self) -> None:
        self._memmap = None


class NpzWriter(_ArrayOutput):
    """An ``.npz`` with one array `key` ``[num_frames, ...]``, streamed into the zip batch by batch.

    ``np.load(path)[key]`` gives the whole array.

    Args:
        path: Output ``.npz`` file.
        num_frames: Total frames; shape and dtype of a frame come from the first batch.
        key: Array name inside the archive.
        compress: Deflate the member (like ``np.savez_compressed``); default stored.
    """

    def __init__(self, path: str | os.PathLike[str], *, num_frames: int, key: str = "depth",
                 compress: bool = False) -> None:
        if not key.isidentifier():
            raise ValueError(f"key must be a Python identifier, got {key!r}")
        super().__init__(path, num_frames=num_frames)
        self.key = key
        self._zip = zipfile.ZipFile(self.tmp_path, "w", allowZip64=True,
                                    compression=zipfile.ZIP_DEFLATED if compress
                                    else zipfile.ZIP_STORED)
        self._member: IO[bytes] | None = None

    def _append(self, arr: np.ndarray) -> None:
        if self._member is None:
            self._member = self._zip.open(f"{self.key}.npy", "w", force_zip64=True)
            header = {"descr": np.lib.format.dtype_to_descr(arr.dtype),
                      "fortran_order": False, "shape": self._shape(arr)}
            np.lib.format.write_array_header_1_0(self._member, header)
        self._member.write(memoryview(arr.reshape(-1).view(np.uint8)))

    def _finalize(self) -> None:
        self._check_complete()
        if self._member is not None:  # always, once every frame is written
            self._member.close()
        self._zip.close()

    def _discard(self) -> None:
        for handle in (self._member, self._zip):
            try:
                if handle is not None:
                    handle.close()
            except (OSError, ValueError, RuntimeError):
                pass
