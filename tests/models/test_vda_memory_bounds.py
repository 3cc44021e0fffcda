"""The depth procedure's memory is bounded by the network size, not the frame size."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vdp.models.video_depth_anything.inference import OfflineDepth, WindowInfo
from vdp.models.video_depth_anything.transform import MEAN, STD, FrameTransform


def channel_mean(x: torch.Tensor, info: WindowInfo) -> torch.Tensor:
    """A deterministic stand-in network call: depth = mean of the normalised channels."""
    return x.mean(dim=2)


def test_window_holds_network_inputs_and_alignment_runs_at_work_size() -> None:
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (40, 3, 1080, 1920), dtype=torch.uint8, generator=g)
    proc = OfflineDepth(channel_mean)
    state = proc.init_state(1080, 1920, input_size=28, max_res=640)
    t = state.transform
    assert (t.frame_size, t.work_size) == ((1080, 1920), (360, 640))
    out = []
    for i in range(0, 40, 16):
        step = proc.push(state, frames[i:i + 16])
        state = step.state
        out.append(step.depth)
        # The window buffer holds float network inputs, never full-resolution frames.
        assert state.frames.dtype == torch.float32
        assert tuple(state.frames.shape) == (32, 3, *t.net_size)
        if state.tail is not None:
            assert tuple(state.tail.shape[-2:]) == t.work_size
            assert tuple(state.reference.shape[-2:]) == t.work_size
    out.append(proc.finish(state).depth)
    depth = torch.cat(out)
    assert tuple(depth.shape) == (40, 1080, 1920) and depth.dtype == torch.float32


def test_uint8_downscale_matches_the_float_downscale() -> None:
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (2, 3, 720, 1280), dtype=torch.uint8, generator=g)
    t = FrameTransform.create(720, 1280, input_size=98, max_res=640)
    ours = t(frames)
    x = F.interpolate(frames.float() / 255, size=t.work_size, mode="bilinear", antialias=True,
                      align_corners=False)
    x = F.interpolate(x, size=t.net_size, mode="bicubic", align_corners=False)
    ref = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    assert ours.shape == ref.shape
    # uint8 rounding at the work size: at most half a level, i.e. 0.5/255/0.224 after normalising
    assert float((ours - ref).abs().max()) < 0.02
    assert float((ours - ref).abs().mean()) < 0.005


def test_network_works_on_a_window_in_bounded_parts() -> None:
    """The encoder sees at most `frames_per_pass` frames at a time, the temporal attention at
    most `position_frames_per_pass` / T positions of the window, the full-resolution head levels one
    micro-batch: the working memory does not scale with the whole window."""
    from vdp.models.video_depth_anything.loading import load_model
    from vdp.models.video_depth_anything.motion_module import TemporalAttention

    model = load_model("vits", synthetic=True).eval()
    model.frames_per_pass = 3
    for mm in model.head.motion_modules:
        mm.temporal_transformer.position_frames_per_pass = 200  # 20 positions of 10 frames
    seen: dict[str, list[int]] = {"encoder": [], "attention": [], "output": []}
    model.pretrained.patch_embed.register_forward_hook(lambda m, i, o: seen["encoder"].append(i[0].shape[0]))
    for m in model.modules():
        if isinstance(m, TemporalAttention):  # [(B*T), positions, C] in, T = 10
            m.register_forward_hook(lambda m, i, o: seen["attention"].append(i[0].shape[1]))
    model.head.scratch.output_conv1.register_forward_hook(lambda m, i, o: seen["output"].append(i[0].shape[0]))
    with torch.inference_mode():
        depth = model(torch.randn(1, 10, 3, 70, 126))
    assert depth.shape == (1, 10, 70, 126)
    assert max(seen["encoder"]) == 3 and sum(seen["encoder"]) == 10
    assert max(seen["attention"]) == 20 and len(seen["attention"]) > 8
    assert max(seen["output"]) == 2 and sum(seen["output"]) == 10
