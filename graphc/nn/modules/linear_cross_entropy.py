"""PyTorch's module path ``torch.nn.modules.linear_cross_entropy`` (the home of its chunked kernels,
which export nothing); graphc's ``linear_cross_entropy`` is in ``graphc.nn.linear_cross_entropy``."""

__all__: list[str] = []
