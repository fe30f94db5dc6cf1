"""The cuda device: tensors on a GPU through CuPy, compared op by op with the same code on the CPU.

Every test takes the ``cuda`` fixture (tests/conftest.py): in CI CuPy is replaced by the strict
stand-in tests/fake_cupy.py; with ``GRAPHC_REAL_CUDA=1`` the same tests run on a real GPU
(``GRAPHC_REAL_CUDA=1 python -m pytest -m cuda``). Shapes are small: these check placement and
semantics, not speed.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys

import numpy as np
import pytest

import fake_cupy
import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.runtime import devices

pytestmark = pytest.mark.cuda

REAL = os.environ.get("GRAPHC_REAL_CUDA") == "1"


def host(t) -> np.ndarray:
    assert isinstance(t, torch.Tensor)
    return t.detach().cpu().numpy()


def assert_on(t, dev) -> None:
    assert t.device == dev, (t.device, dev)
    assert devices.runtime_of(t._data).type == dev.type


def assert_same(cpu_out, cuda_out, dev, rtol=1e-5, atol=1e-6) -> None:
    """Same structure, the cuda results on the GPU, values equal to the CPU's."""
    if isinstance(cpu_out, (tuple, list)):
        assert len(cpu_out) == len(cuda_out)
        for a, b in zip(cpu_out, cuda_out):
            assert_same(a, b, dev, rtol, atol)
        return
    if not isinstance(cpu_out, torch.Tensor):
        assert cpu_out == cuda_out
        return
    assert_on(cuda_out, dev)
    assert cuda_out.dtype is cpu_out.dtype and tuple(cuda_out.shape) == tuple(cpu_out.shape)
    np.testing.assert_allclose(host(cuda_out), host(cpu_out), rtol=rtol, atol=atol, equal_nan=True)


def compare(fn, *arrays, dev, grad: bool = False, rtol=1e-5, atol=1e-6):
    """Run ``fn`` on CPU tensors and on their cuda copies; with ``grad``, also compare the
    gradients of a weighted sum of the (first) output."""
    cpu_in = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    cuda_in = [torch.tensor(a, device=dev, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    c, g = fn(*cpu_in), fn(*cuda_in)
    assert_same(c, g, dev, rtol, atol)
    if grad:
        oc, og = (c[0], g[0]) if isinstance(c, tuple) else (c, g)
        w = np.random.default_rng(1).standard_normal(tuple(oc.shape)).astype(host(oc).dtype)
        (oc * torch.tensor(w)).sum().backward()
        (og * torch.tensor(w, device=dev)).sum().backward()
        for a, b in zip(cpu_in, cuda_in):
            if a.requires_grad:
                assert_same(a.grad, b.grad, dev, rtol, atol)
    return g


rng = np.random.default_rng(0)
A = rng.standard_normal((3, 4)).astype(np.float32)
B = rng.standard_normal((3, 4)).astype(np.float32)
P = (rng.random((3, 4)) + 0.5).astype(np.float32)  # positive
M = rng.standard_normal((4, 5)).astype(np.float32)
I = rng.integers(-5, 6, (3, 4)).astype(np.int64)
J = rng.integers(1, 4, (3, 4)).astype(np.int64)


# ---- moving tensors -------------------------------------------------------------------------

def test_to_cuda_and_back(cuda):
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    y = x.to("cuda")
    assert y.device == torch.device("cuda", 0) and repr(y.device) == "device(type='cuda', index=0)"
    assert y.is_cuda and not y.is_cpu and y.get_device() == 0 and x.get_device() == -1
    assert y.to("cuda") is y and y.cuda() is y and y.to(cuda) is y
    assert x.cpu() is x and y.cpu() is not y and y.cpu().device == torch.device("cpu")
    np.testing.assert_array_equal(y.cpu().numpy(), x.numpy())
    z = x.to(cuda, torch.float64)
    assert z.device == cuda and z.dtype is torch.float64
    assert x.to(device="cuda", dtype=torch.int64).dtype is torch.int64
    assert x.cuda(0).device == cuda and x.cuda(cuda).device == cuda
    assert x.to(y).device == cuda  # to(other): other's device and dtype
    assert y.new_zeros(2).device == cuda and y.new_tensor([1.0]).device == cuda
    assert y.new_full((2,), 3.0).device == cuda and y.new_ones(2, device="cpu").device.type == "cpu"


def test_printing_item_tolist(cuda):
    y = torch.tensor([1.0, 2.5], device="cuda")
    assert repr(y) == "tensor([1.0000, 2.5000], device='cuda:0')"
    assert repr(torch.tensor([1, 2], dtype=torch.int32, device=cuda)) == \
        "tensor([1, 2], device='cuda:0', dtype=graphc.int32)"
    w = torch.ones(2, device=cuda, requires_grad=True)
    assert repr(w * 2) == "tensor([2., 2.], device='cuda:0', grad_fn=<MulBackward0>)"
    assert repr(torch.zeros(0, device=cuda)) == "tensor([], device='cuda:0')"
    assert y[1].item() == 2.5 and y.tolist() == [1.0, 2.5] and float(y.sum()) == 3.5
    assert int(torch.tensor(3, device=cuda)) == 3 and bool(torch.tensor(True, device=cuda))
    assert f"{y[0]:.1f}" == "1.0"


def test_numpy_on_cuda_raises(cuda):
    y = torch.ones(2, device=cuda)
    msg = ("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host "
           "memory first.")
    with pytest.raises(TypeError) as info:
        y.numpy()
    assert str(info.value) == msg
    with pytest.raises(TypeError, match="can't convert cuda:0"):
        np.asarray(y)
    np.testing.assert_array_equal(y.numpy(force=True), [1.0, 1.0])


def test_mixing_devices_raises(cuda):
    msg = "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"
    a, b = torch.ones(2, device=cuda), torch.ones(2)
    for call in (lambda: a + b, lambda: b + a, lambda: torch.cat([a, b]), lambda: a @ torch.ones(2, 2),
                 lambda: torch.where(a > 0, a, b)):
        with pytest.raises(RuntimeError) as info:
            call()
        assert str(info.value) == msg
    # Python scalars and 0-dim CPU tensors may join cuda tensors; the result stays on the GPU
    for r in (a + 1, a * torch.tensor(3.0), torch.tensor(2.0) - a, torch.maximum(a, torch.tensor(0.5))):
        assert r.device == cuda
    np.testing.assert_array_equal(host(a * torch.tensor(3.0)), [3.0, 3.0])


def test_copy_between_devices(cuda):
    a = torch.zeros(2, 3, device=cuda)
    a.copy_(torch.arange(6.0).reshape(2, 3))  # copy_ moves across devices, as in PyTorch
    assert a.device == cuda and host(a).tolist() == [[0, 1, 2], [3, 4, 5]]
    c = torch.zeros(3)
    c.copy_(a[1])
    assert c.device.type == "cpu" and c.tolist() == [3.0, 4.0, 5.0]
    a[0] = torch.tensor([7.0, 8.0, 9.0])  # a CPU value assigned into a GPU tensor
    assert host(a)[0].tolist() == [7, 8, 9]


# ---- creation -------------------------------------------------------------------------------

CREATION = {
    "zeros": lambda d: torch.zeros(2, 3, device=d),
    "ones": lambda d: torch.ones((2, 3), dtype=torch.int32, device=d),
    "empty": lambda d: torch.empty(2, device=d).fill_(1.5),
    "full": lambda d: torch.full((2,), 7, device=d),
    "tensor": lambda d: torch.tensor([[1, 2], [3, 4]], device=d),
    "as_tensor": lambda d: torch.as_tensor(np.arange(4.0), device=d),
    "arange": lambda d: torch.arange(0, 5, 2, device=d),
    "linspace": lambda d: torch.linspace(-1, 1, 7, device=d),
    "logspace": lambda d: torch.logspace(0, 2, 3, device=d),
    "eye": lambda d: torch.eye(3, 2, device=d),
    "tril_indices": lambda d: torch.tril_indices(3, 3, device=d),
    "zeros_like": lambda d: torch.zeros_like(torch.ones(2, device=d)),
    "ones_like": lambda d: torch.ones_like(torch.ones(2), device=d),
    "full_like": lambda d: torch.full_like(torch.ones(2, device=d), 4.0),
    "empty_like": lambda d: torch.empty_like(torch.ones(2, device=d)).zero_(),
    "new_zeros": lambda d: torch.ones(2, device=d).new_zeros((3,)),
    "new_ones": lambda d: torch.ones(2, device=d).new_ones(3),
    "new_empty": lambda d: torch.ones(2, device=d).new_empty(3).fill_(2),
    "legacy": lambda d: torch.Tensor([1.0, 2.0], device=d),
}


@pytest.mark.parametrize("name", sorted(CREATION))
def test_creation_on_device(cuda, name):
    assert_same(CREATION[name]("cpu"), CREATION[name](cuda), cuda)


RANDOM = {
    "rand": lambda d: torch.rand(2, 3, device=d),
    "randn": lambda d: torch.randn(4, device=d, dtype=torch.float64),
    "randint": lambda d: torch.randint(0, 10, (5,), device=d),
    "randperm": lambda d: torch.randperm(6, device=d),
    "rand_like": lambda d: torch.rand_like(torch.ones(3, device=d)),
    "randn_like": lambda d: torch.randn_like(torch.ones(3, device=d)),
    "randint_like": lambda d: torch.randint_like(torch.ones(3, device=d), 5),
    "normal": lambda d: torch.normal(0.0, 2.0, (3,), device=d),
    "normal_tensor": lambda d: torch.normal(torch.zeros(3, device=d), torch.ones(3, device=d)),
    "uniform_": lambda d: torch.empty(3, device=d).uniform_(-1, 1),
    "normal_": lambda d: torch.empty(3, device=d).normal_(),
    "bernoulli": lambda d: torch.bernoulli(torch.full((4,), 0.5, device=d)),
    "multinomial": lambda d: torch.multinomial(torch.ones(2, 4, device=d), 2),
    "dropout": lambda d: F.dropout(torch.ones(8, device=d), 0.5),
}


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_on_device(cuda, name):
    """Drawn on the host from each device's generator: one seed, the same numbers on both."""
    torch.manual_seed(3)
    on_cpu = RANDOM[name]("cpu")
    torch.manual_seed(3)
    assert_same(on_cpu, RANDOM[name](cuda), cuda)


def test_cuda_generator_is_separate(cuda):
    torch.manual_seed(0)
    first = host(torch.rand(3, device=cuda))
    torch.cuda.manual_seed(0)
    torch.rand(3)  # the CPU's stream does not move the GPU's
    np.testing.assert_array_equal(host(torch.rand(3, device=cuda)), first)
    torch.cuda.manual_seed_all(5)
    assert torch.cuda.initial_seed() == 5
    g = torch.Generator(device="cuda").manual_seed(1)
    r = torch.rand(2, device=cuda, generator=g)
    assert r.device == cuda
    with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator but found 'cpu'"):
        torch.rand(2, device=cuda, generator=torch.Generator())


def test_default_device(cuda):
    with torch.device("cuda"):
        assert torch.zeros(2).device == cuda and torch.arange(3).device == cuda
        assert torch.get_default_device() == cuda
        assert torch.ones(2, device="cpu").device.type == "cpu"
        lin = nn.Linear(2, 3)
        assert lin.weight.device == cuda
        assert repr(torch.zeros(1, device="cpu")) == "tensor([0.], device='cpu')"
    assert torch.zeros(2).device.type == "cpu"
    torch.set_default_device("cuda")
    try:
        assert torch.empty(1).device == cuda
    finally:
        torch.set_default_device(None)
    assert torch.get_default_device() == torch.device("cpu")


# ---- eager ops: the same primitive table on CuPy --------------------------------------------

UNARY = ["neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "erf", "erfinv",
         "lgamma", "digamma", "relu", "floor", "round", "sign", "reciprocal", "expm1", "log1p", "square"]


@pytest.mark.parametrize("name", UNARY)
def test_unary(cuda, name):
    x = P if name in ("log", "sqrt", "rsqrt", "lgamma", "digamma", "reciprocal", "log1p") else \
        (A / 4 if name == "erfinv" else A)
    compare(getattr(torch, name) if hasattr(torch, name) else getattr(torch.Tensor, name), x, dev=cuda,
            grad=name not in ("floor", "round", "sign"), rtol=1e-4, atol=1e-5)


BINARY = {
    "add": lambda a, b: a + b * 2, "sub": lambda a, b: a - b, "mul": torch.mul, "div": lambda a, b: a / (b.abs() + 1),
    "pow": lambda a, b: a.abs() ** b, "maximum": torch.maximum, "minimum": torch.minimum, "atan2": torch.atan2,
    "where": lambda a, b: torch.where(a > b, a, b), "lerp": lambda a, b: torch.lerp(a, b, 0.3),
    "addcmul": lambda a, b: torch.addcmul(a, a, b, value=0.5), "clamp": lambda a, b: a.clamp(-0.5, 0.5),
    "xlogy": lambda a, b: torch.xlogy(a, b.abs()), "hypot": torch.hypot, "logaddexp": torch.logaddexp,
    "polygamma": lambda a, b: torch.polygamma(1, b.abs() + 1),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(cuda, name):
    compare(BINARY[name], A, B, dev=cuda, grad=True, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fn", [
    lambda i, j: i // j, lambda i, j: i % j, lambda i, j: i & j, lambda i, j: i | j, lambda i, j: ~i,
    lambda i, j: i * 3 + j, lambda i, j: i == j, lambda i, j: i < j, lambda i, j: (i > 0) & (j > 1),
    lambda i, j: torch.bitwise_xor(i, j), lambda i, j: i.to(torch.int8) + 1000,
], ids=["floordiv", "mod", "and", "or", "invert", "arith", "eq", "lt", "logical", "xor", "wrap"])
def test_integer_ops(cuda, fn):
    compare(fn, I, J, dev=cuda)


REDUCTIONS = {
    "sum": lambda a: a.sum(), "sum_dim": lambda a: a.sum(1, keepdim=True), "mean": lambda a: a.mean(0),
    "prod": lambda a: a.prod(1), "max": lambda a: a.max(), "max_dim": lambda a: a.max(1), "min_dim": lambda a: a.min(0),
    "amax": lambda a: a.amax((0, 1)), "argmax": lambda a: a.argmax(1), "argmin": lambda a: a.argmin(),
    "var": lambda a: a.var(1), "std": lambda a: a.std(), "logsumexp": lambda a: a.logsumexp(1),
    "softmax": lambda a: a.softmax(-1), "log_softmax": lambda a: F.log_softmax(a, 0), "norm": lambda a: a.norm(),
    "cumsum": lambda a: a.cumsum(1), "cumprod": lambda a: a.cumprod(0), "cummax": lambda a: torch.cummax(a, 1),
    "logcumsumexp": lambda a: a.logcumsumexp(1), "all": lambda a: (a > -5).all(), "any": lambda a: (a > 1).any(1),
    "sort": lambda a: a.sort(1), "sort_desc": lambda a: a.sort(0, descending=True), "argsort": lambda a: a.argsort(1),
    "topk": lambda a: a.topk(2, 1), "median": lambda a: a.median(1), "kthvalue": lambda a: a.kthvalue(2, 1),
    "mode": lambda a: a.round().mode(1), "quantile": lambda a: a.quantile(0.3, 1),
    "count_nonzero": lambda a: (a > 0).count_nonzero(), "std_mean": lambda a: torch.std_mean(a, 1),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions(cuda, name):
    compare(REDUCTIONS[name], A, dev=cuda, grad=name not in ("argmax", "argmin", "all", "any", "argsort",
                                                                 "count_nonzero", "mode"), rtol=1e-4, atol=1e-5)


def test_data_dependent_reductions(cuda):
    x = torch.tensor([3, 1, 3, 0, 2], device=cuda)
    assert_same(torch.bincount(x.cpu()), torch.bincount(x), cuda)
    assert_same(torch.unique(x.cpu(), return_counts=True), torch.unique(x, return_counts=True), cuda)
    assert_same(torch.histc(x.cpu().float(), 4), torch.histc(x.float(), 4), cuda)
    s = torch.tensor([0.0, 1.0, 2.0], device=cuda)
    assert_same(torch.searchsorted(s.cpu(), torch.tensor([0.5, 2.5])), torch.searchsorted(s, torch.tensor(
        [0.5, 2.5], device=cuda)), cuda)


LINALG = {
    "matmul": (lambda a, m: a @ m, (A, M)), "mm": (lambda a, m: torch.mm(a, m), (A, M)),
    "bmm": (lambda a, m: torch.bmm(a.reshape(1, 3, 4), m.reshape(1, 4, 5)), (A, M)),
    "einsum": (lambda a, m: torch.einsum("ij,jk->ik", a, m), (A, M)),
    "linear": (lambda a, m: F.linear(a, m.T, m[0]), (A, M)), "outer": (lambda a, m: torch.outer(a[0], m[0]), (A, M)),
}
SPD = (lambda r: (r @ r.T + 4 * np.eye(4)).astype(np.float64))(rng.standard_normal((4, 4)))
LINALG_1 = {
    "inv": torch.linalg.inv, "det": torch.linalg.det, "slogdet": lambda s: torch.linalg.slogdet(s)[::-1],
    "cholesky": torch.linalg.cholesky, "solve": lambda s: torch.linalg.solve(s, s[:, :2]),
    "qr": torch.linalg.qr, "svdvals": torch.linalg.svdvals, "eigvalsh": torch.linalg.eigvalsh,
    "pinv": torch.linalg.pinv, "matrix_norm": lambda s: torch.linalg.matrix_norm(s),
}


@pytest.mark.parametrize("name", sorted(LINALG))
def test_matmul_family(cuda, name):
    fn, args = LINALG[name]
    compare(fn, *args, dev=cuda, grad=True, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(LINALG_1))
def test_linalg(cuda, name):
    compare(LINALG_1[name], SPD, dev=cuda, grad=True, rtol=1e-6, atol=1e-8)


VIEWS = {
    "reshape": lambda a: a.reshape(4, 3), "view": lambda a: a.view(-1), "permute": lambda a: a.permute(1, 0),
    "transpose": lambda a: a.t(), "slice": lambda a: a[1:, ::2], "neg_step": lambda a: a.flip(1),
    "select": lambda a: a[1], "expand": lambda a: a[:1].expand(3, 4), "unsqueeze": lambda a: a.unsqueeze(0),
    "index_list": lambda a: a[[0, 2]], "index_tensor": lambda a: a[:, torch.tensor([3, 0], device=a.device)],
    "mask": lambda a: a[a > 0], "masked_fill": lambda a: a.masked_fill(a < 0, 0.0),
    "gather": lambda a: a.gather(1, torch.tensor([[0, 1], [2, 3], [1, 1]], device=a.device)),
    "index_select": lambda a: a.index_select(1, torch.tensor([2, 0], device=a.device)),
    "take_along_dim": lambda a: torch.take_along_dim(a, a.argsort(1), 1), "cat": lambda a: torch.cat([a, a * 2], 1),
    "stack": lambda a: torch.stack([a, a]), "split": lambda a: a.split([1, 3], 1), "chunk": lambda a: a.chunk(2, 0),
    "roll": lambda a: a.roll(1, 1), "tril": lambda a: a.tril(), "triu": lambda a: a.triu(1),
    "diagonal": lambda a: a.diagonal(), "diag": lambda a: torch.diag(a[0]), "repeat": lambda a: a.repeat(2, 1),
    "repeat_interleave": lambda a: a.repeat_interleave(2, 0), "pad": lambda a: F.pad(a, (1, 2)),
    "nonzero": lambda a: (a > 0).nonzero(), "masked_select": lambda a: a.masked_select(a > 0),
    "scatter": lambda a: torch.zeros(3, 4, device=a.device).scatter(1, torch.tensor([[1], [0], [3]], device=a.device), a),
    "scatter_add": lambda a: a.scatter_add(0, torch.tensor([[0, 1, 2, 0]], device=a.device), a[:1]),
    "index_add": lambda a: a.index_add(0, torch.tensor([0, 0], device=a.device), a[:2]),
    "unfold": lambda a: a.unfold(1, 2, 1), "tile": lambda a: a.tile((2, 1)), "fill_diagonal": lambda a: a.clone().fill_diagonal_(5),
    "index_put": lambda a: a.index_put((torch.tensor([0, 0], device=a.device),), a[:2], accumulate=True),
    "triu_mask": lambda a: torch.where(torch.ones(3, 4, device=a.device, dtype=torch.bool).triu(), a, 0.0),
}


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_and_indexing(cuda, name):
    fn = VIEWS[name]
    compare(fn, A, dev=cuda, grad=name not in ("nonzero",))


def test_views_share_memory(cuda):
    y = torch.arange(6.0, device=cuda).reshape(2, 3)
    v = y[:, 1]
    v.mul_(10)
    assert host(y).tolist() == [[0, 10, 2], [3, 40, 5]]
    assert v._base is y._base and y._version == 1 and v.storage_offset() == 1
    assert v.data_ptr() == y.data_ptr() + 4 and not y.t().is_contiguous() and y.t().contiguous().is_contiguous()


INPLACE = {
    "add_": lambda a: a.add_(1), "mul_": lambda a: a.mul_(a), "clamp_": lambda a: a.clamp_(min=0),
    "zero_": lambda a: a.zero_(), "fill_": lambda a: a.fill_(2), "fill_tensor": lambda a: a.fill_(torch.tensor(3.0)),
    "setitem": lambda a: a.__setitem__((slice(None), 0), 5.0) or a, "setitem_mask": lambda a: a.__setitem__(a > 0, 0.0) or a,
    "setitem_tensor": lambda a: a.__setitem__(1, a[0] * 2) or a, "iadd": lambda a: a.__iadd__(a),
    "sigmoid_": lambda a: a.sigmoid_(), "masked_fill_": lambda a: a.masked_fill_(a > 0, 1.0),
    "index_fill_": lambda a: a.index_fill_(1, torch.tensor([0], device=a.device), -1.0),
    "copy_": lambda a: a.copy_(a.flip(0)), "unsqueeze_": lambda a: a.unsqueeze_(0),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace(cuda, name):
    fn = INPLACE[name]

    def run(a):
        leaf = a
        a = leaf * 1.0
        out = fn(a)
        return out
    compare(run, A, dev=cuda, grad=True)


# ---- autograd -------------------------------------------------------------------------------

def test_backward_gives_cuda_gradients(cuda):
    x = torch.randn(3, 4, device=cuda, requires_grad=True)
    w = torch.randn(4, 2, device=cuda, requires_grad=True)
    loss = (x @ w).relu().pow(2).mean() + x[:, 1:].sum() * 0.5
    loss.backward()
    assert x.grad.device == cuda and w.grad.device == cuda
    xc, wc = x.detach().cpu().requires_grad_(), w.detach().cpu().requires_grad_()
    ((xc @ wc).relu().pow(2).mean() + xc[:, 1:].sum() * 0.5).backward()
    assert_same(xc.grad, x.grad, cuda)
    assert_same(wc.grad, w.grad, cuda)
    g, = torch.autograd.grad((x * x).sum(), x, create_graph=True)
    gg, = torch.autograd.grad(g.sum(), x)
    assert gg.device == cuda and np.allclose(host(gg), 2.0)


def test_to_is_differentiable(cuda):
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = a.to(cuda)
    assert type(b.grad_fn).__name__ == "ToCopyBackward0"
    (b * b).sum().backward()
    assert a.grad.device.type == "cpu" and a.grad.tolist() == [2.0, 4.0]
    c = torch.ones(2, device=cuda, requires_grad=True)
    (c.cpu() * 3).sum().backward()
    assert c.grad.device == cuda and host(c.grad).tolist() == [3.0, 3.0]


# ---- nn layers ------------------------------------------------------------------------------

def _compare_module(make, x: np.ndarray, dev, train: bool = True, atol=1e-5, targets=None):
    torch.manual_seed(0)
    m_cpu = make()
    m_gpu = copy.deepcopy(m_cpu).to(dev)
    for p in m_gpu.parameters():
        assert p.device == dev
    m_cpu.train(train), m_gpu.train(train)
    outs = []
    for m, d in ((m_cpu, "cpu"), (m_gpu, dev)):
        torch.manual_seed(1)
        inp = torch.tensor(x, device=d, requires_grad=x.dtype.kind == "f")
        out = m(inp)
        out = out[0] if isinstance(out, tuple) else out
        out.pow(2).sum().backward()
        outs.append((out, inp.grad, [p.grad for p in m.parameters()], list(m.buffers())))
    (oc, gc, pc, bc), (og, gg, pg, bg) = outs
    assert_same(oc, og, dev, rtol=1e-4, atol=atol)
    if gc is not None:
        assert_same(gc, gg, dev, rtol=1e-4, atol=atol)
    assert_same(pc, pg, dev, rtol=1e-4, atol=atol)
    assert_same(bc, bg, dev, rtol=1e-4, atol=atol)


class _SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)

    def forward(self, x):
        causal = nn.Transformer.generate_square_subsequent_mask(x.shape[1], device=x.device)
        return self.attn(x, x, x, attn_mask=causal)[0]


LAYERS = {
    "linear": (lambda: nn.Linear(4, 3), rng.standard_normal((2, 4))),
    "conv2d": (lambda: nn.Conv2d(2, 3, 3, padding=1, stride=2), rng.standard_normal((2, 2, 5, 5))),
    "conv1d_dilated": (lambda: nn.Conv1d(2, 2, 2, dilation=2, groups=2), rng.standard_normal((1, 2, 6))),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(2, 1, 3, stride=2), rng.standard_normal((1, 2, 3, 3))),
    "batchnorm2d": (lambda: nn.BatchNorm2d(2), rng.standard_normal((3, 2, 2, 2))),
    "batchnorm1d_eval": (lambda: nn.BatchNorm1d(4), rng.standard_normal((3, 4))),
    "layernorm": (lambda: nn.LayerNorm(4), rng.standard_normal((2, 4))),
    "groupnorm": (lambda: nn.GroupNorm(2, 4), rng.standard_normal((2, 4, 3))),
    "lstm": (lambda: nn.LSTM(3, 4, num_layers=2, batch_first=True), rng.standard_normal((2, 5, 3))),
    "gru": (lambda: nn.GRU(3, 4, bidirectional=True), rng.standard_normal((4, 2, 3))),
    "mha": (lambda: _SelfAttention(), rng.standard_normal((2, 3, 4))),
    "transformer_encoder": (lambda: nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1),
                            rng.standard_normal((3, 2, 8))),
    "dropout": (lambda: nn.Dropout(0.3), rng.standard_normal((4, 5))),
    "embedding": (lambda: nn.Embedding(10, 3, padding_idx=0), np.array([[1, 0, 9], [2, 2, 3]])),
    "embedding_max_norm": (lambda: nn.Embedding(10, 3, max_norm=1.0), np.array([1, 4, 4])),
    "maxpool": (lambda: nn.MaxPool2d(2, ceil_mode=True), rng.standard_normal((1, 2, 5, 5))),
    "avgpool": (lambda: nn.AvgPool2d(3, stride=2, padding=1), rng.standard_normal((1, 2, 5, 5))),
    "adaptive_avgpool": (lambda: nn.AdaptiveAvgPool2d((2, 3)), rng.standard_normal((1, 2, 5, 5))),
    "upsample": (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), rng.standard_normal((1, 1, 2, 3))),
    "prelu_gelu": (lambda: nn.Sequential(nn.PReLU(), nn.GELU(), nn.SiLU(), nn.Softplus()), rng.standard_normal((2, 3))),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers(cuda, name):
    make, x = LAYERS[name]
    x = x.astype(np.float32) if x.dtype.kind == "f" else x
    _compare_module(make, x, cuda, train=not name.endswith("_eval"))


LOSSES = {
    "cross_entropy": lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
    "nll": lambda x, t: F.nll_loss(F.log_softmax(x, 1), t),
    "mse": lambda x, t: F.mse_loss(x, x.detach() * 0.5), "smooth_l1": lambda x, t: F.smooth_l1_loss(x, x.detach() * 2),
    "bce_logits": lambda x, t: F.binary_cross_entropy_with_logits(x, (x.detach() > 0).float()),
    "kl": lambda x, t: F.kl_div(F.log_softmax(x, 1), F.softmax(x.detach() * 2, 1), reduction="batchmean"),
    "ctc": lambda x, t: F.ctc_loss(F.log_softmax(x.reshape(3, 1, 4), 2), torch.tensor([[1, 2]], device=x.device),
                                   torch.tensor([3]), torch.tensor([2])),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses(cuda, name):
    compare(LOSSES[name], A, np.array([0, 3, 1]), dev=cuda, grad=True, rtol=1e-4, atol=1e-5)


# ---- optimizers and modules -----------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: torch.optim.Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    lambda ps: torch.optim.Adagrad(ps, lr=0.1),
], ids=["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_optimizer_steps_match_cpu(cuda, make):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    gpu = copy.deepcopy(model).cuda()
    x, y = torch.randn(5, 4), torch.randint(0, 2, (5,))
    for m, xi, yi in ((model, x, y), (gpu, x.to(cuda), y.to(cuda))):
        opt = make(m.parameters())
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(m(xi), yi).backward()
            opt.step()
        for state in opt.state.values():
            for v in state.values():
                if isinstance(v, torch.Tensor) and v.dim() > 0:
                    assert v.device == next(m.parameters()).device
    for a, b in zip(model.parameters(), gpu.parameters()):
        assert_same(a.detach(), b.detach(), cuda, rtol=1e-4, atol=1e-5)


def test_module_to_keeps_parameter_objects(cuda):
    m = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    params = list(m.parameters())
    m(torch.randn(4, 3)).sum().backward()
    assert m.cuda() is m
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    assert all(p.device == cuda and p.grad.device == cuda for p in m.parameters())
    assert all(b.device == cuda for b in m.buffers())
    assert isinstance(m[0].weight, nn.Parameter) and m[0].weight.requires_grad
    m.to("cpu", torch.float64)
    assert all(p.device.type == "cpu" and p.dtype is torch.float64 for p in m.parameters())
    assert m[1].num_batches_tracked.dtype is torch.int64
    m.to(cuda)
    sd = m.state_dict()
    assert all(v.device == cuda for v in sd.values())
    lin = nn.Linear(2, 2, device=cuda)
    assert lin.weight.device == cuda and lin.bias.device == cuda


def test_clip_grad_norm(cuda):
    m = nn.Linear(3, 2).to(cuda)
    m(torch.ones(4, 3, device=cuda)).sum().backward()
    total = nn.utils.clip_grad_norm_(m.parameters(), 0.5)
    assert total.device == cuda
    norm = float(torch.stack([p.grad.norm() for p in m.parameters()]).norm())
    assert abs(norm - 0.5) < 1e-4


# ---- checkpoints ----------------------------------------------------------------------------

def test_checkpoint_round_trip(cuda, tmp_path):
    m = nn.Linear(3, 2).to(cuda)
    opt = torch.optim.Adam(m.parameters())
    m(torch.ones(1, 3, device=cuda)).sum().backward()
    opt.step()
    f = tmp_path / "ckpt.pt"
    torch.save({"model": m.state_dict(), "opt": opt.state_dict()}, f)
    back = torch.load(f)
    assert back["model"]["weight"].device == cuda  # tensors come back where they were saved
    assert_same(m.weight.detach(), back["model"]["weight"], cuda)
    on_cpu = torch.load(f, map_location="cpu")
    assert on_cpu["model"]["weight"].device.type == "cpu"
    np.testing.assert_array_equal(on_cpu["model"]["weight"].numpy(), host(m.weight))
    m2 = nn.Linear(3, 2)
    m2.load_state_dict(back["model"])  # copies into the CPU parameters
    assert m2.weight.device.type == "cpu"
    assert torch.load(f, map_location=lambda t, loc: t.cuda())["model"]["bias"].device == cuda
    t = torch.arange(3.0)
    torch.save(t, f)
    assert torch.load(f, map_location=cuda).device == cuda


# ---- graphc.cuda ----------------------------------------------------------------------------

def test_cuda_module(cuda):
    assert torch.cuda.is_available() and torch.cuda.device_count() >= 1
    assert torch.cuda.current_device() == 0 and torch.cuda.is_initialized()
    assert isinstance(torch.cuda.get_device_name(), str) and torch.cuda.get_device_name(0)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    big = torch.zeros(1000, 100, device=cuda)
    assert torch.cuda.memory_allocated() >= before + big.nbytes
    peak = torch.cuda.max_memory_allocated()
    assert peak >= before + big.nbytes
    del big
    import gc
    gc.collect()
    assert torch.cuda.memory_allocated() < peak and torch.cuda.max_memory_allocated() == peak
    assert torch.accelerator.is_available() and torch.accelerator.current_accelerator() == torch.device("cuda")
    assert torch.accelerator.device_count() == torch.cuda.device_count()
    assert torch.accelerator.current_device_index() == 0
    torch.accelerator.synchronize()
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        torch.ones(1, device=f"cuda:{torch.cuda.device_count()}")


@pytest.mark.skipif(REAL, reason="needs two GPUs: the stand-in provides them")
def test_set_device_makes_cuda_mean_that_gpu(monkeypatch):
    fake_cupy.install(monkeypatch, device_count=2)
    fake_cupy.reset_runtime(monkeypatch)
    torch.cuda.set_device(1)
    assert torch.cuda.current_device() == 1
    assert torch.ones(1).to("cuda").device == torch.device("cuda:1")
    assert torch.zeros(2, device="cuda").device == torch.device("cuda:1")
    torch.cuda.set_device("cuda:0")
    assert torch.zeros(2, device="cuda").device == torch.device("cuda:0")
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        torch.cuda.set_device(2)


# ---- without CuPy, without a GPU ------------------------------------------------------------

def test_without_cupy_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    fake_cupy.reset_runtime(monkeypatch)
    assert not torch.cuda.is_available() and torch.cuda.device_count() == 0
    assert torch.cuda.memory_allocated() == 0
    torch.cuda.manual_seed(1)  # accepted, as in PyTorch
    with pytest.raises(torch.DeviceUnavailableError) as info:
        torch.ones(2, device="cuda")
    msg = str(info.value)
    assert "is_available() is False" in msg
    assert "CuPy is not installed: pip install 'graphc[cuda]' (cupy-cuda12x)" in msg
    assert isinstance(info.value, AssertionError) and isinstance(info.value, RuntimeError)


def test_without_gpu_the_error_says_so(monkeypatch):
    fake_cupy.install(monkeypatch, error=RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"))
    fake_cupy.reset_runtime(monkeypatch)
    assert not torch.cuda.is_available()
    with pytest.raises(torch.DeviceUnavailableError) as info:
        torch.ones(2).cuda()
    msg = str(info.value)
    assert "CuPy is installed but no CUDA GPU/driver was found" in msg and "no CUDA-capable device" in msg
    assert "CuPy is not installed" not in msg


def test_import_graphc_imports_no_cupy_or_triton():
    code = "import sys, graphc; print(sorted(m for m in ('cupy', 'cupyx', 'triton') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_legacy_type_strings_name_the_device(cuda):
    x = torch.ones(2, device=cuda)
    assert x.type() == "graphc.cuda.FloatTensor" and torch.ones(2).type() == "graphc.FloatTensor"
    y = torch.ones(2).type("torch.cuda.DoubleTensor")
    assert y.device == cuda and y.dtype is torch.float64
    assert x.type("torch.LongTensor").device.type == "cpu"
