"""DINOv2 building blocks (one file per block, names as in the official checkpoints)."""
from vdp.models.video_depth_anything.dinov2_layers.attention import Attention
from vdp.models.video_depth_anything.dinov2_layers.block import Block
from vdp.models.video_depth_anything.dinov2_layers.layer_scale import LayerScale
from vdp.models.video_depth_anything.dinov2_layers.mlp import Mlp
from vdp.models.video_depth_anything.dinov2_layers.patch_embed import PatchEmbed

__all__ = ["Attention", "Block", "LayerScale", "Mlp", "PatchEmbed"]
