"""The names PyTorch keeps in torch.nn.modules.upsampling (graphc defines them in pooling.py)."""
from .pooling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = ["Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d"]
