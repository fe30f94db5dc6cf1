"""The names PyTorch keeps in torch.nn.modules.channelshuffle (graphc defines them in pixelshuffle.py)."""
from .pixelshuffle import ChannelShuffle

__all__ = ["ChannelShuffle"]
