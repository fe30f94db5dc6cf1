"""pytorch/examples regression/main.py: fit a degree-4 polynomial with one Linear layer, smooth L1
loss and a hand-written SGD step on ``param.data``. The target polynomial and the batches come from
a seeded numpy generator (the example draws them with torch.randn)."""
import numpy as np

import graphc as torch
import graphc.nn.functional as F

DETERMINISTIC = False  # nothing random here; kept for the driver
POLY_DEGREE = 4
_rng = np.random.default_rng(0)
W_target = torch.from_numpy(_rng.standard_normal((POLY_DEGREE, 1), dtype=np.float32)) * 5
b_target = torch.from_numpy(_rng.standard_normal(1, dtype=np.float32)) * 5


def make_features(x):
    """Builds features i.e. a matrix with columns [x, x^2, x^3, x^4]."""
    x = x.unsqueeze(1)
    return torch.cat([x ** i for i in range(1, POLY_DEGREE + 1)], 1)


def f(x):
    """Approximated function."""
    return x.mm(W_target) + b_target.item()


def poly_desc(W, b):
    """Creates a string description of a polynomial."""
    result = 'y = '
    for i, w in enumerate(W):
        result += '{:+.2f} x^{} '.format(w, i + 1)
    result += '{:+.2f}'.format(b[0])
    return result


def get_batch(rng, batch_size=32):
    """Builds a batch i.e. (x, f(x)) pair."""
    random = torch.from_numpy(rng.standard_normal(batch_size, dtype=np.float32))
    x = make_features(random)
    y = f(x)
    return x, y


def build():
    return {"fc": torch.nn.Linear(W_target.size(0), 1)}


def train(modules, compiled, steps=6):
    fc = modules["fc"]
    model = torch.compile(fc) if compiled else fc
    rng = np.random.default_rng(1)
    losses = []
    for batch_idx in range(1, steps + 1):
        # Get data
        batch_x, batch_y = get_batch(rng)
        # Reset gradients
        fc.zero_grad()
        # Forward pass
        output = F.smooth_l1_loss(model(batch_x), batch_y)
        loss = output.item()
        # Backward pass
        output.backward()
        # Apply gradients
        for param in fc.parameters():
            param.data.add_(-0.1 * param.grad)
        losses.append(loss)
    desc = poly_desc(fc.weight.view(-1), fc.bias)  # the example's report (formats 0-d tensors)
    assert desc.startswith("y = ") and desc.count("x^") == POLY_DEGREE
    return losses
