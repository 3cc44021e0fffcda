"""FrameBatch and VideoInfo, the value types every stage, output and runner exchanges."""
from __future__ import annotations

import pytest
import torch

from vdp.types import FrameBatch, VideoInfo


def batch(n: int = 6, first: int = 10, **layers) -> FrameBatch:
    frames = torch.arange(n * 3 * 4 * 5, dtype=torch.int64).remainder(256).to(torch.uint8).view(n, 3, 4, 5)
    return FrameBatch(frames, torch.arange(first, first + n), torch.arange(n, dtype=torch.float64) / 30,
                      layers)


def test_shapes_are_checked_and_shown():
    with pytest.raises(ValueError, match=r"frames must be uint8 \[T,3,H,W\], got torch.float32 \(2, 3, 4, 5\)"):
        FrameBatch(torch.zeros(2, 3, 4, 5), torch.arange(2), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"indices \(3,\) and pts_seconds \(2,\) must both be \[2\]"):
        FrameBatch(torch.zeros(2, 3, 4, 5, dtype=torch.uint8), torch.arange(3), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="layer 'depth' has 5 frames, batch has 6"):
        batch(depth=torch.zeros(5, 4, 5))
    b = batch(depth=torch.zeros(6, 4, 5))
    assert repr(b) == "FrameBatch(frames=(6, 3, 4, 5), first_index=10, layers={'depth': (6, 4, 5)})"
    assert (len(b), b.height, b.width) == (6, 4, 5)


def test_slice_concat_and_layers():
    b = batch(depth=torch.arange(6.0)[:, None, None].expand(6, 4, 5))
    b.starts_segment = True
    head, tail = b.slice(0, 2), b.slice(2)
    assert head.starts_segment and not tail.starts_segment
    joined = FrameBatch.concat([head, FrameBatch.empty(4, 5).with_layers(depth=torch.empty(0, 4, 5)), tail])
    assert torch.equal(joined.frames, b.frames) and torch.equal(joined.layers["depth"], b.layers["depth"])
    assert joined.starts_segment
    with pytest.raises(ValueError, match=r"layer names differ: \['depth'\] vs \[\]"):
        FrameBatch.concat([head, batch(2)])
    with pytest.raises(ValueError, match="concat needs at least one batch"):
        FrameBatch.concat([])
    extra = b.with_layers(alpha=torch.ones(6, 4, 5))
    assert sorted(extra.layers) == ["alpha", "depth"] and list(b.layers) == ["depth"]


def test_compact_copies_only_views_of_larger_batches():
    b = batch(depth=torch.rand(6, 4, 5))
    assert b.compact() is b
    part = b.slice(4)
    part.starts_segment = True
    small = part.compact()
    assert small is not part and small.starts_segment
    for t in (small.frames, small.indices, small.pts_seconds, small.layers["depth"]):
        assert t.untyped_storage().nbytes() == t.nbytes
    assert torch.equal(small.frames, b.frames[4:]) and torch.equal(small.indices, torch.tensor([14, 15]))
    assert torch.equal(small.layers["depth"], b.layers["depth"][4:])
    view_layer = b.with_layers(depth=torch.rand(12, 4, 5)[::2])  # frames own memory, a layer does not
    assert view_layer.compact() is not view_layer


def test_video_info_to_dict():
    info = VideoInfo("a.mp4", num_frames=30, fps=30.0, duration_seconds=1.0, width=64, height=48, codec="h264")
    assert info.to_dict() == {"path": "a.mp4", "num_frames": 30, "fps": 30.0, "duration_seconds": 1.0,
                              "width": 64, "height": 48, "codec": "h264", "pixel_format": "",
                              "rotation_degrees": 0, "has_audio": False, "bit_depth": 8,
                              "declared_frames": None, "warnings": [], "colour_primaries": "",
                              "colour_transfer": "", "colour_matrix": "", "colour_range": "",
                              "tone_mapping": "", "video_stream": None,
                              "audio_stream": None, "streams_used": None}


def test_frame_batch_pickles_through_numpy_into_memory_of_its_own():
    import pickle

    import numpy as np

    batch = FrameBatch(torch.randint(0, 255, (2, 3, 4, 5), dtype=torch.uint8), torch.arange(2),
                       torch.arange(2).double(), {"depth": torch.rand(2, 4, 5),
                                                  "half": torch.rand(2, 4, 5).bfloat16()}, starts_segment=True)
    buffers = []
    data = pickle.dumps(batch, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) >= 4  # frames, indices, pts and depth travel out of band (no copy into the pickle)
    readonly = [np.frombuffer(bytes(b.raw()), dtype=np.uint8) for b in buffers]  # like the object store's
    out = pickle.loads(data, buffers=[memoryview(r) for r in readonly])
    assert out.starts_segment and torch.equal(out.frames, batch.frames)
    assert torch.equal(out.layers["depth"], batch.layers["depth"]) and out.layers["half"].dtype == torch.bfloat16
    out.layers["depth"][0, 0, 0] = -1.0  # writable: its own memory, not the read-only buffer
    assert batch.layers["depth"][0, 0, 0] != -1.0


def test_a_reading_process_borrows_the_object_stores_memory_and_copies_what_it_keeps():
    import pickle

    import numpy as np

    from vdp.types import borrow_store_memory

    batch = FrameBatch(torch.randint(0, 255, (2, 3, 4, 5), dtype=torch.uint8), torch.arange(2),
                       torch.arange(2).double(), {"depth": torch.rand(2, 4, 5)})
    buffers = []
    data = pickle.dumps(batch, protocol=5, buffer_callback=buffers.append)
    readonly = [np.frombuffer(bytes(b.raw()), dtype=np.uint8) for b in buffers]
    addresses = {r.__array_interface__["data"][0] for r in readonly}
    borrow_store_memory()
    try:
        out = pickle.loads(data, buffers=[memoryview(r) for r in readonly])
    finally:
        borrow_store_memory(False)
    assert torch.equal(out.layers["depth"], batch.layers["depth"]) and torch.equal(out.frames, batch.frames)
    assert {out.frames.data_ptr(), out.layers["depth"].data_ptr()} <= addresses  # no copy
    kept = out.owned()
    assert torch.equal(kept.layers["depth"], batch.layers["depth"])
    assert kept.layers["depth"].data_ptr() not in addresses and kept.frames.data_ptr() not in addresses
    copied = pickle.loads(data, buffers=[memoryview(r) for r in readonly])  # borrowing off again
    assert copied.layers["depth"].data_ptr() not in addresses
