"""Analysis of decoded frames that steers processing (shot boundaries)."""
from vdp.analysis.scenecut import SceneCutDetector, hsv_histograms

__all__ = ["SceneCutDetector", "hsv_histograms"]
