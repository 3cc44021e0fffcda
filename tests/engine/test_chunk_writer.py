"""ChunkWriter in one process: neighbours exchanging heads and fits give the one-process merge."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vdp.engine.chunk_writer import ChunkWriter, OutputFolderError, StoreLoan, WriteRequest
from vdp.engine.chunks import Chunk
from vdp.engine.merge import ChunkMerger
from vdp.outputs.parts import join_parts
from vdp.spec import JobSpec
from vdp.types import FrameBatch, VideoInfo, borrow_store_memory

INFO = VideoInfo(path="synthetic", num_frames=40, fps=25.0, duration_seconds=1.6, width=24, height=16,
                 codec="none")
CHUNKS = [Chunk(0, 0, 16, 0), Chunk(1, 16, 30, 10), Chunk(2, 30, 40, 24)]
SPEC = JobSpec.parse({"input": "synthetic.mp4", "stages": {"depth": {}},
                      "outputs": [{"kind": "depth_npy"}, {"kind": "depth_png16"}]})


def chunk_results(chunk: Chunk, batch: int = 4) -> list[FrameBatch]:
    """What a relative-depth model gives for the chunk: the scene's depth under the chunk's own
    scale and shift (chunk 0: none)."""
    gen = torch.Generator().manual_seed(chunk.index)
    s, t = (1.0, 0.0) if chunk.index == 0 else (0.5 + float(torch.rand(1, generator=gen)), float(torch.rand(1, generator=gen)))
    out = []
    for first in range(chunk.run_start, chunk.stop, batch):
        idx = torch.arange(first, min(first + batch, chunk.stop))
        depth = 1.0 + 0.02 * idx.float()[:, None, None] + torch.linspace(0, 1, 24)[None, None, :].expand(len(idx), 16, 24)
        frames = torch.zeros((len(idx), 3, 16, 24), dtype=torch.uint8)
        out.append(FrameBatch(frames, idx, idx.double() / 25, {"depth": depth * s + t}))
    return out


def request(tmp: Path, chunk: Chunk) -> WriteRequest:
    nxt = CHUNKS[chunk.index + 1].overlap if chunk.index + 1 < len(CHUNKS) else 0
    return WriteRequest(SPEC.to_json(), INFO, chunk, nxt, {"depth": "align"},
                        str(tmp / ".vdp" / "parts" / f"c{chunk.index:05d}.a1"))


class StoreMemory:
    """Batches as a writer process receives them from Ray's object store: unpickled from
    read-only buffers, borrowed (`borrow_store_memory`); `unchanged` checks none was written."""

    def __init__(self) -> None:
        self.buffers: list[tuple[np.ndarray, bytes]] = []

    def __call__(self, batch: FrameBatch) -> FrameBatch:
        import pickle

        raw = []
        data = pickle.dumps(batch, protocol=5, buffer_callback=raw.append)
        readonly = [np.frombuffer(bytes(b.raw()), dtype=np.uint8) for b in raw]
        self.buffers += [(r, r.tobytes()) for r in readonly]
        borrow_store_memory()
        try:
            return pickle.loads(data, buffers=[memoryview(r) for r in readonly])
        finally:
            borrow_store_memory(False)

    def unchanged(self) -> bool:
        return all(r.tobytes() == before for r, before in self.buffers)


# held batches: copied (no loan), kept in the store's memory (a loan large enough) or copied
# once the loan is used up (one byte: none fits)
@pytest.mark.parametrize("borrowed,loan", [(False, None), (True, None), (True, 1 << 30), (True, 1)])
def test_neighbours_exchanging_heads_give_the_one_process_merge(tmp_path, borrowed, loan):
    (tmp_path / ".vdp").mkdir()
    (tmp_path / ".vdp" / "ledger.jsonl").write_text("")
    store = StoreMemory()
    arrive = store if borrowed else (lambda b: b)
    lender = None if loan is None else StoreLoan(loan)
    writers = [ChunkWriter(request(tmp_path, c), loan=lender) for c in CHUNKS]
    heads = {}
    for c, w in zip(CHUNKS, writers):  # every chunk computes before any seam is joined
        for b in chunk_results(c):
            w.add(arrive(b))
        heads[c.index] = w.take_head()
        assert w.complete
    if lender is not None:  # chunks 1 and 2 wait for their maps: borrowed while the loan allows
        assert lender.used == (sum(w.held_bytes for w in writers[1:]) if loan > 1 else 0)
        assert (lender.used > 0) == (loan > 1)
    assert heads[0] is None and heads[1].frames.numel() == 0 and len(heads[1]) == 6
    ranges = writers[0].take_ranges()
    assert ranges is not None and "scale" in ranges[1]
    for k in range(len(CHUNKS) - 1):  # seams in order: k joins k+1's head, k+1 gets its map
        fits, record, _ = writers[k].join(arrive(heads[k + 1]))
        writers[k + 1].set_map(fits, ranges)
        assert record.index == k + 1 and abs(fits["depth"].scale - 1) > 1e-3
    stats = [w.finish() for w in writers]
    assert sum(s.frames for s in stats) == 40
    for i, name in enumerate(["depth_npy", "depth_png16"]):
        join_parts("frames", [Path(s.parts[i]) for s in stats], tmp_path / name, fps=25.0, frames=40,
                   audio_from=None, timeout_s=30)

    merged = []
    merger = ChunkMerger(CHUNKS, {"depth": "align"}, merged.append)
    for c in CHUNKS:
        for b in chunk_results(c):
            merger.feed(b)
        merger.end_chunk()
    merger.finish()
    expected = torch.cat([b.layers["depth"] for b in merged]).numpy()
    got = np.concatenate([np.load(p) for p in sorted((tmp_path / "depth_npy").iterdir())])
    assert got.shape == expected.shape and np.array_equal(got, expected)
    assert len(list((tmp_path / "depth_png16").iterdir())) == 40
    assert (tmp_path / "depth_png16.json").is_file()
    assert store.unchanged()  # borrowed memory was only read
    assert lender is None or lender.used == 0  # every borrowed batch was given back once written


def test_a_writer_that_cannot_see_the_output_folder_says_so(tmp_path):
    with pytest.raises(OutputFolderError, match="storage every node writes at the same path"):
        ChunkWriter(request(tmp_path, CHUNKS[1]), {"node_id": "n1"})
