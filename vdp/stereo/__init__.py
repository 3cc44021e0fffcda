"""Stereo view synthesis from depth: DIBR warping, stable disparity range, packing, anaglyphs."""
from vdp.stereo.anaglyph import anaglyph_dubois
from vdp.stereo.dibr import dilate_nearness, naive_forward_warp, stereo_pair, warp_view
from vdp.stereo.layout import LAYOUTS, pack_stereo, packed_size
from vdp.stereo.normalise import (StreamingRange, depth_to_disparity, frame_percentiles,
                                  minmax_ranges, normalise)

__all__ = ["LAYOUTS", "StreamingRange", "anaglyph_dubois", "depth_to_disparity",
           "dilate_nearness", "frame_percentiles", "minmax_ranges", "naive_forward_warp",
           "normalise", "pack_stereo", "packed_size", "stereo_pair", "warp_view"]
