"""Teacher families: deterministic, each shows its failure mode, held-out split disjoint."""
from __future__ import annotations

import pytest
import torch

from vdp.refiner.families import FAMILIES, VDA_OVERLAP, VDA_WINDOW, UnknownFamilyError, simulate_family
from vdp.refiner.splits import HELD_OUT_FAMILIES, TRAIN_FAMILIES
from vdp.refiner.synthetic import render_clip
from vdp.refiner.teacher import simulate_teacher


@pytest.fixture(scope="module")
def clip():
    return render_clip(3, frames=48, height=32, width=48)


def _scale(teacher, gt):
    """Per-frame global log-scale error (median of log ratio) ``[T]``."""
    return torch.log(teacher / gt).flatten(1).median(1).values


def test_every_family_is_deterministic_positive_and_differs(clip):
    outs = {}
    for f in FAMILIES:
        a = simulate_family(f, clip.depth, 5, dynamic=clip.dynamic, poses=clip.poses)
        b = simulate_family(f, clip.depth, 5, dynamic=clip.dynamic, poses=clip.poses)
        assert torch.equal(a, b) and a.shape == clip.depth.shape and bool((a > 0).all())
        assert not torch.equal(a, simulate_family(f, clip.depth, 6, dynamic=clip.dynamic,
                                                  poses=clip.poses))
        outs[f] = a
    assert torch.equal(outs["classic"], simulate_teacher(clip.depth, 5))   # v0's simulator unchanged
    assert len({tuple(o.flatten()[:50].tolist()) for o in outs.values()}) == len(FAMILIES)


def test_splits_partition_the_families():
    assert set(TRAIN_FAMILIES) | set(HELD_OUT_FAMILIES) == set(FAMILIES)
    assert not set(TRAIN_FAMILIES) & set(HELD_OUT_FAMILIES)


def test_vda_windows_jump_at_window_joins(clip):
    steps = []
    for seed in range(8):
        s = _scale(simulate_family("vda_windows", clip.depth, seed), clip.depth)
        steps.append((s[1:] - s[:-1]).abs())
    steps = torch.stack(steps).mean(0)
    stride = VDA_WINDOW - VDA_OVERLAP
    inside = steps[:stride - VDA_OVERLAP - 1]             # frames 0..11: within window 0 only
    assert float(inside.max()) < 0.004                    # no change except fields' rounding
    assert float(steps[stride - VDA_OVERLAP - 1:VDA_WINDOW].mean()) > 3 * float(inside.mean()) + 1e-3


def test_moving_objects_errors_sit_on_moving_pixels():
    scene = next(c for c in (render_clip(s, frames=24, height=32, width=48) for s in range(40))
                 if int(c.dynamic.sum()) > 200)
    t = simulate_family("moving_objects", scene.depth, 1, dynamic=scene.dynamic)
    err = torch.log(t / scene.depth)
    err = err - err.flatten(1).median(1).values[:, None, None]       # persistent global bias off
    flick = (err[1:] - err[:-1]).abs()
    dyn = scene.dynamic[1:] & scene.dynamic[:-1]
    assert float(flick[dyn].mean()) > 3 * float(flick[~dyn].mean())


def test_camera_motion_wobbles_with_speed(clip):
    s = torch.stack([_scale(simulate_family("camera_motion", clip.depth, k, poses=clip.poses),
                            clip.depth) for k in range(6)])
    assert float(s.std()) > 0.003


def test_errors(clip):
    with pytest.raises(UnknownFamilyError, match="unknown teacher family 'nope'"):
        simulate_family("nope", clip.depth, 0)
    with pytest.raises(UnknownFamilyError, match="dynamic mask"):
        simulate_family("moving_objects", clip.depth, 0)
    with pytest.raises(UnknownFamilyError, match="poses"):
        simulate_family("camera_motion", clip.depth, 0)


def test_drift_field_changes_slowly(clip):
    err = torch.log(simulate_family("drift", clip.depth, 2) / clip.depth)
    err = err - err.mean(dim=(1, 2), keepdim=True)
    step = float((err[1:] - err[:-1]).abs().mean())
    far = float((err[-1] - err[0]).abs().mean())
    assert far > 4 * step                                 # consecutive frames alike, ends apart
