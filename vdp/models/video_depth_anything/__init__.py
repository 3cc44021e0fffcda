"""Video Depth Anything: model, preprocessing and the official offline / streaming procedures."""
from vdp.models.video_depth_anything.configs import MODEL_CONFIGS, WINDOWING, Windowing, model_config
from vdp.models.video_depth_anything.inference import (OfflineDepth, OfflineState, StreamDepth,
                                                       StreamState, WindowInfo, WindowRecord,
                                                       infer_video_depth)
from vdp.models.video_depth_anything.loading import build_model, load_model, synthetic_weights
from vdp.models.video_depth_anything.transform import FrameTransform, network_size
from vdp.models.video_depth_anything.video_depth import StreamCache, VideoDepthAnything

__all__ = [
    "FrameTransform", "MODEL_CONFIGS", "OfflineDepth", "OfflineState", "StreamCache", "StreamDepth",
    "StreamState", "VideoDepthAnything", "WINDOWING", "WindowInfo", "WindowRecord", "Windowing",
    "build_model", "infer_video_depth", "load_model", "model_config", "network_size",
    "synthetic_weights",
]
