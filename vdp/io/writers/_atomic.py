"""Base of every writer: incremental writes into a hidden temp beside the target, renamed on close.

Nothing ever appears under the final name until `close()` has finished the output; `abort()`
(or an exception inside a ``with`` block, or the writer being garbage-collected unclosed)
removes the temp. A process killed outright (SIGKILL) can leave a hidden
``.<name>.<id>.tmp*`` beside the target, never a partial file under the final name.
"""
from __future__ import annotations

import os
import shutil
import uuid
from typing import Callable, Literal

import numpy as np
import torch

from vdp.errors import EncodeError

_State = Literal["open", "closed", "aborted"]


def as_array(x: np.ndarray | torch.Tensor, *, name: str, dtype: type | None = None,
             ndim: int | None = None) -> np.ndarray:
    """`x` as a C-contiguous numpy array, checked (never silently converted).

    Args:
        x: Array or tensor (any device).
        name: Argument name for error messages.
        dtype: Required dtype, or None for any.
        ndim: Required number of dims, or None for any.

    Returns:
        The data as ``np.ndarray``.

    Raises:
        ValueError: Wrong dtype or number of dims.
    """
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if dtype is not None and arr.dtype != np.dtype(dtype):
        raise ValueError(f"{name} must be {np.dtype(dtype)}, got {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dims, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def rgb_alpha_tensors(rgb: np.ndarray | torch.Tensor,
                      alpha: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``rgb [T,3,H,W]`` and ``alpha [T,H,W]``, checked, as CPU tensors of matching T, H, W.

    `rgb` keeps its memory layout (channels-last frames are not copied into planes: each
    writer reads them in the layout it needs); `alpha` is contiguous.

    Raises:
        ValueError: Wrong dtypes, dims, or shapes that do not match.
    """
    rgb_t = torch.as_tensor(rgb).detach().cpu()
    if rgb_t.dtype != torch.uint8 or rgb_t.ndim != 4:
        raise ValueError(f"rgb must be uint8 with 4 dims, got {rgb_t.dtype} {tuple(rgb_t.shape)}")
    alpha_t = torch.from_numpy(as_array(alpha, name="alpha", dtype=np.uint8, ndim=3))
    t, c, h, w = rgb_t.shape
    if c != 3 or tuple(alpha_t.shape) != (t, h, w):
        raise ValueError(f"rgb must be [T,3,H,W] and alpha [T,H,W] with the same T,H,W; got "
                         f"rgb {tuple(rgb_t.shape)}, alpha {tuple(alpha_t.shape)}")
    return rgb_t, alpha_t


class AtomicOutput:
    """A file or folder written under a temp name and moved to `path` on `close()`.

    Subclasses implement `_finalize()` (finish the temp; may raise) and `_discard()` (release
    resources of an output being thrown away; must not raise), and wrap the I/O of their
    ``write`` in `_guarded`.

    Args:
        path: Final path; its parent folder is created if missing.
        is_dir: The output is a folder (the temp folder is created here).
        tmp_suffix: Ending of the temp name (some encoders pick the format from it).
    """

    def __init__(self, path: str | os.PathLike[str], *, is_dir: bool = False,
                 tmp_suffix: str = "") -> None:
        self.path = os.path.abspath(os.fspath(path))
        parent, name = os.path.split(self.path)
        if not name:
            raise ValueError(f"output path {path!r} has no file name")
        os.makedirs(parent, exist_ok=True)
        self.is_dir = is_dir
        self.tmp_path = os.path.join(parent, f".{name}.{uuid.uuid4().hex[:8]}.tmp{tmp_suffix}")
        self.frames_written = 0
        self._state: _State = "open"
        if is_dir:
            os.mkdir(self.tmp_path)

    # -- subclass hooks --------------------------------------------------------------------
    def _finalize(self) -> None:
        """Complete the temp output (flush, close handles, finish encoders)."""

    def _discard(self) -> None:
        """Release handles/processes of an aborted output (must not raise)."""

    # -- public ----------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once `close()` or `abort()` has run."""
        return self._state != "open"

    def close(self) -> None:
        """Finish the output and move it to `path` (replacing what was there).

        Raises:
            EncodeError: Finishing failed; the temp is removed and `path` is left untouched.
        """
        if self._state == "closed":
            return
        if self._state == "aborted":
            raise EncodeError(f"{self.path}: the writer was aborted; nothing to close")
        try:
            self._finalize()
            self._commit()
        except OSError as exc:
            self.abort()
            raise EncodeError(f"{self.path}: could not finish the output: {exc}") from exc
        except BaseException:
            self.abort()
            raise
        self._state = "closed"

    def abort(self) -> None:
        """Throw the output away: nothing is left under `path` or the temp name (idempotent)."""
        if self._state != "open":
            return
        self._state = "aborted"
        try:
            self._discard()
        finally:
            remove_path(self.tmp_path)

    def __enter__(self) -> "AtomicOutput":
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        try:
            if getattr(self, "_state", "closed") == "open":
                self.abort()
        except Exception:  # interpreter shutdown: best effort only
            pass

    # -- helpers ---------------------------------------------------------------------------
    def _guarded(self, fn: Callable[[], None]) -> None:
        """Run one write step; on an I/O or encoder failure abort and raise `EncodeError`."""
        if self._state != "open":
            raise EncodeError(f"{self.path}: cannot write, the writer is {self._state}")
        try:
            fn()
        except EncodeError:
            self.abort()
            raise
        except (OSError, RuntimeError) as exc:
            self.abort()
            raise EncodeError(f"{self.path}: writing failed: {exc}") from exc

    def _commit(self) -> None:
        if not self.is_dir or not os.path.lexists(self.path):
            os.replace(self.tmp_path, self.path)
            return
        # os.replace cannot put a folder over a non-empty one: move the old one aside first.
        aside = f"{self.tmp_path}.old"
        os.replace(self.path, aside)
        os.replace(self.tmp_path, self.path)
        remove_path(aside)


def remove_path(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
