"""graphc.func: grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian, functional_call, vmap.

Gradients are checked against central finite differences in float64 (computed with numpy, not
with graphc's autodiff), vmap against a Python loop over the samples, compiled transforms
against eager ones, and, where PyTorch is installed, per-sample gradients against torch.func's.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.func import functional_call, grad, grad_and_value, hessian, jacfwd, jacrev, jvp, vjp, vmap

f64 = torch.float64


def _rand(*shape, seed=0):
    return torch.tensor(np.random.default_rng(seed).normal(size=shape))


def _fd_jacobian(f, x: np.ndarray, eps=1e-6) -> np.ndarray:
    """d f(x) / d x by central differences: shape f(x).shape + x.shape (f maps numpy to numpy)."""
    y0 = np.asarray(f(x))
    jac = np.zeros(y0.shape + x.shape)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        jac[(...,) + i] = (np.asarray(f(x + d)) - np.asarray(f(x - d))) / (2 * eps)
    return jac


def _np(f):
    """A graphc function of one tensor as a numpy function (for finite differences)."""
    return lambda a: f(torch.tensor(a)).numpy()


def loss3(x):
    return (torch.tanh(x @ x.t()).sum() + (x.exp() / (1 + x * x)).mean() + F.log_softmax(x, 1)[:, 0].sum()) ** 2


def vec(x):
    return torch.stack([x.sin().sum(), (x * x).prod(), torch.linalg.norm(x)])


# ---- grad family against finite differences -------------------------------------------------

def test_grad_matches_finite_differences():
    x = _rand(3, 4)
    g = grad(loss3)(x)
    assert g.dtype is f64 and g.shape == x.shape
    assert np.allclose(g.numpy(), _fd_jacobian(_np(loss3), x.numpy()), rtol=1e-6, atol=1e-8)


def test_grad_argnums_pytrees_aux_and_grad_and_value():
    w, b, x = {"w": _rand(4, 2, seed=1), "b": _rand(2, seed=2)}, _rand(2, seed=3), _rand(5, 4, seed=4)

    def f(p, c, x):
        out = torch.tanh(x @ p["w"] + p["b"]) * c
        return out.pow(2).sum(), out

    (gp, gc), (value, aux) = grad_and_value(f, argnums=(0, 1), has_aux=True)(w, b, x)
    assert set(gp) == {"w", "b"} and gc.shape == (2,)
    assert torch.allclose(value, f(w, b, x)[0]) and torch.allclose(aux, f(w, b, x)[1])
    fd_w = _fd_jacobian(lambda a: f({"w": torch.tensor(a), "b": w["b"]}, b, x)[0].numpy(), w["w"].numpy())
    fd_c = _fd_jacobian(lambda a: f(w, torch.tensor(a), x)[0].numpy(), b.numpy())
    assert np.allclose(gp["w"].numpy(), fd_w, atol=1e-7) and np.allclose(gc.numpy(), fd_c, atol=1e-7)
    g_only, aux2 = grad(f, argnums=2, has_aux=True)(w, b, x)
    assert g_only.shape == x.shape and torch.allclose(aux2, aux)
    # an argument the output does not depend on gets zeros, as in PyTorch
    assert torch.equal(grad(lambda a, z: (a * a).sum(), argnums=1)(x, b), torch.zeros(2, dtype=f64))


def test_vjp_and_jvp_match_finite_differences():
    x = _rand(3, 2)
    jac = _fd_jacobian(_np(vec), x.numpy())          # (3, 3, 2)
    out, vjp_fn = vjp(vec, x)
    assert torch.allclose(out, vec(x))
    u = _rand(3, seed=5)
    (gx,) = vjp_fn(u)
    assert np.allclose(gx.numpy(), np.einsum("o,oij->ij", u.numpy(), jac), atol=1e-7)
    t = _rand(3, 2, seed=6)
    out2, jv = jvp(vec, (x,), (t,))
    assert torch.allclose(out2, out)
    assert np.allclose(jv.numpy(), np.einsum("oij,ij->o", jac, t.numpy()), atol=1e-7)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        vjp_fn(torch.ones(4, dtype=f64))
    with pytest.raises(RuntimeError, match="Expected primals to be a tuple"):
        jvp(vec, x, t)


def test_jacrev_jacfwd_agree_with_finite_differences_over_several_inputs():
    def f(a, b):
        return (a.sin() @ b, (a * a).sum() * b.exp())
    a, b = _rand(2, 3, seed=7), _rand(3, seed=8)
    jr = jacrev(f, argnums=(0, 1))(a, b)
    jf = jacfwd(f, argnums=(0, 1))(a, b)
    for o in range(2):
        for i, x in enumerate((a, b)):
            fd = _fd_jacobian(lambda v: f(*(torch.tensor(v) if k == i else y for k, y in enumerate((a, b))))[o].numpy(),
                              x.numpy())
            assert jr[o][i].shape == fd.shape and jf[o][i].shape == fd.shape
            assert np.allclose(jr[o][i].numpy(), fd, atol=1e-7) and np.allclose(jf[o][i].numpy(), fd, atol=1e-7)
    assert torch.allclose(jacrev(vec, chunk_size=1)(a), jacrev(vec)(a))


def test_hessian_equals_jacrev_of_jacrev_and_finite_differences():
    x = _rand(2, 3, seed=9)
    h = hessian(loss3)(x)
    hh = jacrev(jacrev(loss3))(x)
    assert h.shape == (2, 3, 2, 3)
    assert torch.allclose(h, hh, atol=1e-10)
    fd = _fd_jacobian(lambda v: grad(loss3)(torch.tensor(v)).numpy(), x.numpy(), eps=1e-5)
    assert np.allclose(h.numpy(), fd, atol=1e-6)
    assert torch.allclose(jacfwd(jacfwd(loss3))(x), h, atol=1e-10)


def test_nested_grad_closure_and_eager_autograd_of_a_gradient():
    x = torch.tensor(1.5, dtype=f64)
    # d/dx [d/dy x*y*y at y=x] = d/dx 2x^2 = 4x: the inner grad treats the captured x as a constant
    assert torch.allclose(grad(lambda x: grad(lambda y: x * y * y)(x))(x), torch.tensor(6.0, dtype=f64))
    xr = _rand(3).requires_grad_()
    g = grad(lambda a: (a ** 3).sum())(xr)           # its result is differentiable by eager autograd
    g.sum().backward()
    assert torch.allclose(xr.grad, 6 * xr.detach())


def test_grad_respects_no_grad_and_detach_inside_and_ignores_it_outside():
    x = _rand(3)

    def f(a):
        with torch.no_grad():
            c = a * 2
        return (c * a + a * a.detach()).sum()
    assert torch.allclose(grad(f)(x), 3 * x)
    with torch.no_grad():
        assert torch.allclose(grad(lambda a: (a * a).sum())(x), 2 * x)


def test_grad_of_data_dependent_python_runs_eager_autograd():
    def f(a):
        if a.sum() > 0:  # no graph can hold this branch: grad falls back to eager autograd, as PyTorch's grad is
            return (a * a).sum()
        return (a ** 3).sum() * (1.0 + float(a.detach().max().item() > 10))  # a piecewise constant read
    for x in (_rand(3).abs(), -_rand(3).abs()):
        assert np.allclose(grad(f)(x).numpy(), _fd_jacobian(_np(f), x.numpy()), atol=1e-7)
    xr = _rand(3).abs().requires_grad_()
    grad(f)(xr).sum().backward()  # the gradient stays differentiable
    assert torch.allclose(xr.grad, torch.full((3,), 2.0, dtype=f64))


# ---- vmap ------------------------------------------------------------------------------------

def test_vmap_matches_a_loop_with_in_dims_out_dims_and_nesting():
    W, b, ys = _rand(5, 4, 3), _rand(4), _rand(3, 5)
    f = lambda p, y: p[0] @ y + p[1]  # noqa: E731
    got = vmap(f, in_dims=((0, None), 1))((W, b), ys)
    assert torch.allclose(got, torch.stack([W[i] @ ys[:, i] + b for i in range(5)]))
    x = _rand(2, 3, 4)
    twice, total = vmap(lambda a: (a * 2, a.sum()), out_dims=(1, 0))(x)
    assert twice.shape == (3, 2, 4) and torch.allclose(twice, (x * 2).transpose(0, 1))
    assert torch.allclose(total, x.sum((1, 2)))
    assert torch.allclose(vmap(vmap(lambda a: a.sum() * a))(x), x.sum(-1, keepdim=True) * x)
    r = _rand(5, seed=1)
    inner = vmap(torch.outer, in_dims=(0, None))
    assert torch.allclose(vmap(inner, in_dims=(0, None))(x, r),
                          torch.stack([torch.stack([torch.outer(x[i, j], r) for j in range(3)]) for i in range(2)]))
    assert torch.allclose(vmap(lambda a: a.cos(), in_dims=-1, out_dims=-1, chunk_size=3)(x), x.cos())
    unbatched, n = vmap(lambda a: (b * 2, 3), out_dims=(0, None))(x)  # an unbatched output is repeated
    assert unbatched.shape == (2, 4) and n == 3
    xr = _rand(4, 3).requires_grad_()  # eager autograd flows through a vmapped function
    vmap(lambda a: a.sin() * a.sum())(xr).sum().backward()
    xd = xr.detach()
    assert torch.allclose(xr.grad, xd.cos() * xd.sum(1, keepdim=True) + xd.sin().sum(1, keepdim=True))


def test_vmap_indexing_matmul_and_linalg_against_a_loop():
    A, v, idx = _rand(5, 3, 4), _rand(5, 4, seed=1), torch.tensor([[0, 2], [1, 1], [3, 0], [2, 2], [0, 0]])
    cases = [
        (lambda a, i: a[:, i], (A, idx)),
        (lambda a, i: a.gather(0, i), (v, idx)),
        (lambda a, i: torch.zeros(4, dtype=f64).index_add(0, i, a[:2]), (v, idx)),
        (lambda a, b: torch.dot(a, b), (v, v)),
        (lambda a, b: a @ b, (A, v)),
        (lambda a: torch.linalg.solve(a[:, :3] + 3 * torch.eye(3, dtype=f64), a[:, 3:]), (A,)),
        (lambda a: F.conv1d(a[None], _rand(2, 3, 2, seed=3))[0], (A,)),
    ]
    for f, args in cases:
        want = torch.stack([f(*(t[k] for t in args)) for k in range(5)])
        assert torch.allclose(vmap(f)(*args), want)


def _escaped(x):
    """A per-sample tensor the vmapped function kept in Python state."""
    kept = []
    vmap(lambda a: (kept.append(a), a * 2)[1])(x)
    return kept[0]


@pytest.mark.parametrize("call, error, message", [
    (lambda x: vmap(lambda a: a.sum().item())(x), RuntimeError, "calling .item()"),
    (lambda x: vmap(lambda a: a if a.sum() > 0 else -a)(x), RuntimeError, "data-dependent control flow"),
    (lambda x: vmap(lambda a: a.nonzero())(x), RuntimeError, "can output dynamic shape"),
    (lambda x: vmap(lambda a: torch.zeros(3, dtype=f64).add_(a))(x), RuntimeError, "inplace arithmetic"),
    (lambda x: vmap(lambda a: a + torch.rand(3))(x), RuntimeError, "randomness error mode"),
    (lambda x: vmap(lambda a: a, randomness="x")(x), RuntimeError, "Only allowed values for randomness"),
    (lambda x: vmap(lambda a, b: a + b)(x, torch.randn(5, 3)), ValueError, r"got sizes \[4, 5\]"),
    (lambda x: vmap(lambda a, b: a + b, in_dims=(0, 0, 0))(x, x), ValueError, "in_dims is not compatible"),
    (lambda x: vmap(lambda a: a, in_dims=[0])(x), ValueError, "expected `in_dims` to be int or a"),
    (lambda x: vmap(lambda a, b: a * b, in_dims=(0, 0))(x, 2.0), ValueError, "cannot vmap over non-Tensor"),
    (lambda x: vmap(lambda a: a, in_dims=2)(x), ValueError, "expected in_dim to satisfy -2 <= in_dim < 2"),
    (lambda x: vmap(lambda a: a, in_dims=(None,))(x), ValueError, "at least one Tensor to vmap over"),
    (lambda x: vmap(lambda a: 3)(x), ValueError, "must only return Tensors"),
    (lambda x: vmap(lambda a: a, out_dims=None)(x), ValueError, "can not return a BatchedTensor when out_dim is None"),
    (lambda x: vmap(lambda a: a, out_dims="x")(x), ValueError, "`out_dims` must be an int, None or a python"),
    (lambda x: vmap(lambda a: (a, a), out_dims=(0, 0, 0))(x), ValueError, "out_dims is not compatible"),
    (lambda x: grad(lambda a: a * 2)(x), RuntimeError, "Expected f\\(\\*args\\) to return a scalar Tensor"),
    (lambda x: grad(lambda a: a.sum(), argnums=3)(x), RuntimeError, "Got argnum=3, but only 1 positional inputs"),
    (lambda x: grad(lambda a: a.sum(), has_aux=True)(x), RuntimeError, r"should be a tuple: \(output, aux\)"),
    (lambda x: grad(lambda a: x.copy_(a).sum())(x * 1), RuntimeError, "mutate a captured Tensor"),
    (lambda x: _escaped(x) + 1, RuntimeError, "used outside the function being transformed"),
    (lambda x: vmap(grad(lambda a: a.sum() * a.sum().item()))(x), RuntimeError, "data-dependent Python"),
])
def test_errors_as_pytorch_gives_them(call, error, message):
    with pytest.raises(error, match=message):
        call(_rand(4, 3))


def test_vmap_randomness_modes():
    x = torch.zeros(4, 50, dtype=f64)
    same = vmap(lambda a: a + torch.rand(50, dtype=f64), randomness="same")(x)
    assert torch.equal(same[0], same[3])
    diff = vmap(lambda a: F.dropout(a + 1, 0.5), randomness="different")(x)
    assert not torch.equal(diff[0], diff[1])
    assert set(np.unique(diff.numpy())) <= {0.0, 2.0}
    # the keys are drawn where the result is computed: compiled draws what eager draws, same seed
    for fn, arg in ((vmap(lambda a: F.dropout(a, 0.5), randomness="different"), torch.ones(3, 8)),
                    (grad(lambda a: F.dropout(a, 0.5).sum()), torch.ones(8))):
        torch.manual_seed(3)
        eager = fn(arg)
        torch.manual_seed(3)
        assert torch.equal(torch.compile(fn, fullgraph=True)(arg), eager)


# ---- per-sample gradients (PyTorch's tutorial pattern) ----------------------------------------

class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3)
        self.fc = nn.Linear(6 * 2 * 2, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv1(x))), 2)
        return F.log_softmax(self.fc(torch.flatten(F.relu(self.conv2(x)), 1)), dim=1)


def _models():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    cnn = CNN().double().eval()  # eval: BatchNorm reads its running statistics (buffers)
    return [(mlp, (6, 5)), (cnn, (6, 1, 10, 10))]


def _per_sample_grad_fn(model):
    def compute_loss(params, buffers, sample, target):
        predictions = functional_call(model, (params, buffers), (sample.unsqueeze(0),))
        return F.cross_entropy(predictions, target.unsqueeze(0))
    return vmap(grad(compute_loss), in_dims=(None, None, 0, 0))


@pytest.mark.parametrize("which", [0, 1], ids=["mlp", "cnn"])
def test_per_sample_grads_equal_a_loop_of_grads_and_compile_equals_eager(which):
    model, shape = _models()[which]
    data, targets = _rand(*shape, seed=11), torch.tensor([0, 2, 1, 1, 0, 2])
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    ft = _per_sample_grad_fn(model)(params, buffers, data, targets)
    for i in range(shape[0]):
        model.zero_grad()
        F.cross_entropy(model(data[i:i + 1]), targets[i:i + 1]).backward()
        for k, p in model.named_parameters():
            assert torch.allclose(ft[k][i], p.grad), (k, i)
    compiled = torch.compile(_per_sample_grad_fn(model), fullgraph=True)
    for _ in range(2):  # the second call runs the cached compiled graph
        ct = compiled(params, buffers, data, targets)
        assert all(torch.allclose(ct[k], ft[k]) for k in ft)
    # the module's own parameters are back in place
    assert all(p is model.get_parameter(k) for k, p in model.named_parameters())


def test_per_sample_grads_equal_pytorch():
    ptorch = pytest.importorskip("torch")
    model, shape = _models()[0]
    data, targets = _rand(*shape, seed=12), torch.tensor([0, 2, 1, 1, 0, 2])
    params = {k: v.detach() for k, v in model.named_parameters()}
    ours = _per_sample_grad_fn(model)(params, {}, data, targets)
    # PyTorch's per-sample gradients by a loop of autograd.grad (torch.func's vmap(grad) gives the same
    # numbers; importing it costs ~25 s more here)
    tm = ptorch.nn.Sequential(ptorch.nn.Linear(5, 8), ptorch.nn.Tanh(), ptorch.nn.Linear(8, 3)).double()
    with ptorch.no_grad():
        for k, p in tm.named_parameters():
            p.copy_(ptorch.tensor(params[k].numpy()))
    tx, ty = ptorch.tensor(data.numpy()), ptorch.tensor(targets.numpy())
    for i in range(shape[0]):
        loss = ptorch.nn.functional.cross_entropy(tm(tx[i:i + 1]), ty[i:i + 1])
        theirs = ptorch.autograd.grad(loss, list(tm.parameters()))
        for (k, _), g in zip(tm.named_parameters(), theirs):
            assert np.allclose(ours[k][i].numpy(), g.numpy(), atol=1e-12), (k, i)


def test_compiled_transforms_equal_eager():
    x = _rand(3, 4, seed=13)
    for t in (grad(loss3), jacrev(vec), jacfwd(vec), hessian(loss3), vmap(grad(lambda a: (a.sin() * a).sum()))):
        assert torch.allclose(torch.compile(t, fullgraph=True)(x), t(x), atol=1e-10)
    # and transforms of a compiled function
    f = torch.compile(lambda a: (a.sin() * a).sum())
    assert torch.allclose(vmap(grad(f))(x), x.cos() * x + x.sin())


# ---- functional_call -------------------------------------------------------------------------

def test_functional_call_swaps_and_restores_ties_and_checks_keys():
    m = nn.Linear(3, 2).double()
    x = _rand(4, 3)
    w = torch.zeros(2, 3, dtype=f64)
    assert torch.allclose(functional_call(m, {"weight": w}, (x,)), m.bias.expand(4, 2))
    assert m.weight is m.get_parameter("weight") and not torch.equal(m.weight, w)
    tied = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False)).double()
    tied[1].weight = tied[0].weight
    eye = torch.eye(3, dtype=f64)
    assert torch.allclose(functional_call(tied, {"0.weight": eye}, x), x)  # the tied "1.weight" follows
    assert not torch.allclose(functional_call(tied, {"0.weight": eye}, x, tie_weights=False), x)
    with pytest.raises(RuntimeError, match=r"Missing key\(s\): 'bias'"):
        functional_call(m, {"weight": w}, (x,), strict=True)
    with pytest.raises(ValueError, match="appeared in multiple dictionaries"):
        functional_call(m, ({"weight": w}, {"weight": w}), (x,))


# ---- the rest of torch.func ------------------------------------------------------------------

def test_linearize_and_strict_jvp():
    from graphc.func import linearize
    x, t = _rand(3, 2), _rand(3, 2, seed=1)
    out, jvp_fn = linearize(vec, x)
    assert torch.allclose(out, vec(x))
    assert np.allclose(jvp_fn(t).numpy(), np.einsum("oij,ij->o", _fd_jacobian(_np(vec), x.numpy()), t.numpy()),
                       atol=1e-7)
    with pytest.raises(RuntimeError, match="The output of f is independent of the inputs"):
        jvp(lambda a: torch.ones(2, dtype=f64), (x,), (t,), strict=True)


def test_model_ensembling_with_stack_module_state_and_vmapped_batch_norm():
    from graphc.func import replace_all_batch_norm_modules_, stack_module_state
    torch.manual_seed(1)
    models = [nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).double() for _ in range(3)]
    for m in models:
        replace_all_batch_norm_modules_(m)  # batch statistics, no running ones to update in place
        assert m[1].running_mean is None and not m[1].track_running_stats
    params, buffers = stack_module_state(models)
    assert params["0.weight"].shape == (3, 3, 4) and params["0.weight"].requires_grad
    x = _rand(5, 4)
    base = models[0]
    out = vmap(lambda p, b: functional_call(base, (p, b), (x,)))(params, buffers)
    assert torch.allclose(out, torch.stack([m(x) for m in models]))


def test_functionalize_and_debug_unwrap_keep_the_function_and_tensor():
    from graphc.func import debug_unwrap, functionalize
    x = _rand(3)

    def f(a):
        b = a.clone()
        b.mul_(2)
        return b
    assert torch.equal(functionalize(f)(x), 2 * x) and debug_unwrap(x) is x
    assert torch.allclose(vmap(functionalize(f))(_rand(2, 3)), 2 * _rand(2, 3))


def test_pytree_hessian_aux_outputs_and_threads():
    p = {"a": _rand(2, seed=20), "b": _rand(3, seed=21)}

    def f(p):
        return (p["a"].sum() * p["b"] ** 2).sum()
    h = hessian(f)(p)
    b = p["b"].numpy()
    assert np.allclose(h["a"]["b"].numpy(), np.tile(2 * b, (2, 1)))  # d2f / da_i db_j = 2 b_j
    assert np.allclose(h["b"]["b"].numpy(), 2 * p["a"].sum().item() * np.eye(3))
    assert torch.equal(h["a"]["a"], torch.zeros(2, 2, dtype=f64))
    j, aux = jacrev(lambda x: (x.sin(), x.cos()), has_aux=True)(p["a"])
    assert torch.allclose(j, torch.diag(p["a"].cos())) and torch.allclose(aux, p["a"].cos())
    _, vjp_fn, aux = vjp(lambda x: (x.sin(), "aux"), p["a"], has_aux=True)
    assert aux == "aux" and torch.allclose(vjp_fn(torch.ones(2, dtype=f64))[0], p["a"].cos())
    # each thread traces into its own graphs (the dispatch stack is per thread)
    import threading
    fn = vmap(grad(lambda a: (a.sin() * a).sum()))
    xs = [_rand(4, 3, seed=30 + i) for i in range(4)]
    results = [None] * 4

    def work(i):
        for _ in range(5):
            results[i] = fn(xs[i])
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for x, r in zip(xs, results):
        assert torch.allclose(r, x.cos() * x + x.sin())


def test_readme_snippet_runs():
    import pathlib
    import re
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Function transforms (`graphc.func`)", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102  (the repository's own README)
    assert scope["grads"]["0.weight"].shape == (64, 32, 20)


def test_transforms_of_vmap_and_vmap_of_transforms():
    xs = _rand(4, 3, seed=40)

    def f(x):
        return (x.sin() * x.sum()).tanh()
    loop = torch.stack([jacrev(f)(x) for x in xs])
    assert torch.allclose(vmap(jacrev(f))(xs), loop)
    assert torch.allclose(vmap(jacfwd(f))(xs), loop)
    assert torch.allclose(vmap(hessian(lambda x: f(x).sum()))(xs),
                          torch.stack([hessian(lambda x: f(x).sum())(x) for x in xs]))
    whole = jacrev(vmap(f))(xs)  # (4, 3, 4, 3): samples do not interact
    assert torch.allclose(torch.stack([whole[i, :, i] for i in range(4)]), loop)
    assert torch.allclose(whole.sum(), loop.sum()) and torch.allclose(jacfwd(vmap(f))(xs), whole)


@pytest.mark.cuda
def test_transforms_on_the_cuda_device(cuda):
    x = _rand(4, 3, seed=50)
    xc = x.to(cuda)
    for t in (grad(loss3), vmap(grad(lambda a: (a.sin() * a).sum())), jacrev(vec), jacfwd(vec), hessian(loss3)):
        got = t(xc)
        assert got.device == cuda
        assert np.allclose(got.cpu().numpy(), t(x).numpy(), atol=1e-10)
