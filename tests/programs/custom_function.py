"""PyTorch's tutorial "Defining new autograd Functions" (polynomial_custom_function.py): fit
y = a + b * P3(c + d * x) to sin(x), with P3 the Legendre polynomial as a custom
``autograd.Function`` (save_for_backward, saved_tensors), and the tutorial's hand-written gradient
step under no_grad. Compiled, the whole step (forward, the custom backward, the update) is one
graph. The tutorial's 2000 points; a few steps instead of 2000."""
import math

import graphc as torch

DETERMINISTIC = False  # nothing random after the initial weights


class LegendrePolynomial3(torch.autograd.Function):
    """
    We can implement our own custom autograd Functions by subclassing
    torch.autograd.Function and implementing the forward and backward passes
    which operate on Tensors.
    """

    @staticmethod
    def forward(ctx, input):
        """
        In the forward pass we receive a Tensor containing the input and return
        a Tensor containing the output. ctx is a context object that can be used
        to stash information for backward computation. You can cache arbitrary
        objects for use in the backward pass using the ctx.save_for_backward method.
        """
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        """
        In the backward pass we receive a Tensor containing the gradient of the loss
        with respect to the output, and we need to compute the gradient of the loss
        with respect to the input.
        """
        input, = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


dtype = torch.float
device = torch.device("cpu")


def build():
    # The tutorial's initial weights (not too far from the correct result, to ensure convergence);
    # a module holds them so that the test driver can copy them like any model's.
    params = torch.nn.ParameterDict({
        "a": torch.nn.Parameter(torch.full((), 0.0, device=device, dtype=dtype)),
        "b": torch.nn.Parameter(torch.full((), -1.0, device=device, dtype=dtype)),
        "c": torch.nn.Parameter(torch.full((), 0.0, device=device, dtype=dtype)),
        "d": torch.nn.Parameter(torch.full((), 0.3, device=device, dtype=dtype)),
    })
    return {"params": params}


a = b = c = d = None  # the tutorial's weights are module globals; train() binds them


def train(modules, compiled, steps=8):
    global a, b, c, d
    p = modules["params"]
    a, b, c, d = p["a"], p["b"], p["c"], p["d"]
    # Create Tensors to hold input and outputs.
    x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
    y = torch.sin(x)
    learning_rate = 5e-6

    def step():
        global a, b, c, d  # the tutorial's loop body runs at module level
        # To apply our Function, we use Function.apply method. We alias this as 'P3'.
        P3 = LegendrePolynomial3.apply

        # Forward pass: compute predicted y using operations; we compute
        # P3 using our custom autograd operation.
        y_pred = a + b * P3(c + d * x)

        # Compute and print loss
        loss = (y_pred - y).pow(2).sum()

        # Use autograd to compute the backward pass.
        loss.backward()

        # Update weights using gradient descent
        with torch.no_grad():
            a -= learning_rate * a.grad
            b -= learning_rate * b.grad
            c -= learning_rate * c.grad
            d -= learning_rate * d.grad

            # Manually zero the gradients after updating weights
            a.grad = None
            b.grad = None
            c.grad = None
            d.grad = None
        return loss.detach()

    run = torch.compile(step, fullgraph=True) if compiled else step
    losses = [run().item() for t in range(steps)]
    losses.append(a.item() + b.item() + c.item() + d.item())
    return losses
