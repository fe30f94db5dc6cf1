"""Eager graphc, written exactly like a PyTorch tutorial (only the import differs).

Fits a small polynomial to sin(x) with autograd and hand-written gradient descent, then shows a
custom autograd.Function and a second derivative.
"""
import math

import graphc as torch

torch.manual_seed(0)

# Data: y = sin(x) on [-pi, pi]
x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)

# Model: y = a + b x + c x^2 + d x^3, parameters as leaf tensors that require grad
a, b, c, d = (torch.randn((), requires_grad=True) for _ in range(4))

learning_rate = 1e-6
for t in range(2000):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum()
    if t % 400 == 399:
        print(f"step {t + 1:4d}  loss {loss.item():10.3f}")
    loss.backward()
    with torch.no_grad():
        for p in (a, b, c, d):
            p -= learning_rate * p.grad
            p.grad = None

print(f"Result: y = {a.item():.4f} + {b.item():.4f} x + {c.item():.4f} x^2 + {d.item():.4f} x^3")


class Cube(torch.autograd.Function):
    """A custom op with its own backward."""

    @staticmethod
    def forward(ctx, inp):
        ctx.save_for_backward(inp)
        return inp ** 3

    @staticmethod
    def backward(ctx, grad_output):
        (inp,) = ctx.saved_tensors
        return grad_output * 3 * inp ** 2


z = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
out = Cube.apply(z).sum()
out.backward()
print("d/dz sum(z^3) =", z.grad)

w = torch.tensor(2.0, requires_grad=True)
(g,) = torch.autograd.grad(w ** 3, w, create_graph=True)
(g2,) = torch.autograd.grad(g, w)
print(f"f(w) = w^3 at w=2: f' = {g.item():.1f}, f'' = {g2.item():.1f}")
print("grad_fn of z * 2:", z * 2)
