"""nn.Module and the containers: registration, traversal order and names, modes, state dicts and
their error messages, hooks, dtype conversion and repr, as documented for torch.nn.

Expected names, orders and messages are PyTorch's (written out by hand here).
"""
import copy
import re
from collections import OrderedDict

import numpy as np
import pytest

import graphc as torch
import graphc.nn as nn


def names(it):
    return [n for n, _ in it]


# ---- registration -------------------------------------------------------------------------------

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.scale = nn.Parameter(torch.ones(1))
        self.register_buffer("step", torch.zeros(1))
        self.register_buffer("cache", torch.zeros(2), persistent=False)
        self.plain = 7  # an ordinary attribute

    def forward(self, x):
        return self.bn(self.fc(x)) * self.scale


def test_registration_on_assignment():
    m = Net()
    assert list(m._parameters) == ["scale"]
    assert list(m._modules) == ["fc", "bn"]
    assert list(m._buffers) == ["step", "cache"]
    assert m.plain == 7 and "plain" not in m._parameters
    assert isinstance(m.scale, nn.Parameter) and m.scale.requires_grad


def test_parameters_buffers_order_and_names():
    m = Net()
    assert names(m.named_parameters()) == ["scale", "fc.weight", "fc.bias", "bn.weight", "bn.bias"]
    assert [tuple(p.shape) for p in m.parameters()] == [(1,), (4, 3), (4,), (4,), (4,)]
    assert names(m.named_buffers()) == ["step", "cache", "bn.running_mean", "bn.running_var",
                                        "bn.num_batches_tracked"]
    assert names(m.named_parameters(recurse=False)) == ["scale"]
    assert names(m.named_parameters(prefix="model")) == ["model.scale", "model.fc.weight", "model.fc.bias",
                                                         "model.bn.weight", "model.bn.bias"]
    assert names(m.named_children()) == ["fc", "bn"]
    assert [type(c).__name__ for c in m.children()] == ["Linear", "BatchNorm1d"]


def test_named_modules_nested_and_shared():
    seq = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 1)))
    assert names(seq.named_modules()) == ["", "0", "1", "1.0", "1.1"]
    assert [type(m).__name__ for m in seq.modules()] == ["Sequential", "Linear", "Sequential", "ReLU", "Linear"]
    shared = nn.Linear(2, 2)
    s = nn.Sequential(shared, shared)
    # duplicates are reported once, under their first name
    assert names(s.named_parameters()) == ["0.weight", "0.bias"]
    assert names(s.named_modules()) == ["", "0"]
    assert len(list(s.children())) == 1
    assert names(s.named_parameters(remove_duplicate=False)) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    # but the state dict has every path
    assert list(s.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_register_buffer_persistent_and_nonpersistent():
    m = nn.Module()
    m.register_buffer("a", torch.ones(2))
    m.register_buffer("b", torch.zeros(1), persistent=False)
    m.register_buffer("c", None)
    assert names(m.named_buffers()) == ["a", "b"]
    assert list(m.state_dict()) == ["a"]
    m.b = torch.ones(3)  # assigning a tensor to a registered buffer name replaces the buffer
    assert m._buffers["b"].shape == (3,)
    m.nb = nn.Buffer(torch.ones(1), persistent=False)
    m.pb = nn.Buffer(torch.ones(1))
    assert names(m.named_buffers()) == ["a", "b", "nb", "pb"]
    assert list(m.state_dict()) == ["a", "pb"]


def test_add_module_and_register_errors():
    m = nn.Module()
    m.add_module("x", nn.ReLU())
    m.register_module("y", nn.Tanh())
    m.add_module("z", None)
    assert list(m._modules) == ["x", "y", "z"]
    assert names(m.named_children()) == ["x", "y"]
    with pytest.raises(KeyError, match=r'contain "\."'):
        m.add_module("a.b", nn.ReLU())
    with pytest.raises(KeyError, match="empty string"):
        m.register_parameter("", None)
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("w", 3)
    with pytest.raises(TypeError, match=r"cannot assign '.*FloatTensor' object to parameter 'p' "
                                        r"\(torch.nn.Parameter or None required\)"):
        m.register_parameter("p", torch.zeros(1))
    m.attr = 3
    with pytest.raises(KeyError, match="attribute 'attr' already exists"):
        m.register_buffer("attr", torch.zeros(1))


def test_assignment_type_errors_and_none():
    lin = nn.Linear(2, 3)
    with pytest.raises(TypeError, match=r"cannot assign '.*FloatTensor' as parameter 'bias' "
                                        r"\(torch.nn.Parameter or None expected\)"):
        lin.bias = torch.zeros(3)
    lin.bias = None
    assert names(lin.named_parameters()) == ["weight"]
    assert list(lin.state_dict()) == ["weight"]
    m = nn.Module()
    m.p = nn.Parameter(torch.zeros(1))
    with pytest.raises(TypeError, match="as parameter 'p'"):
        m.p = nn.Linear(1, 1)
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'nope'"):
        lin.nope


def test_delattr_and_dir():
    m = nn.Linear(1, 1)
    assert "weight" in dir(m) and "bias" in dir(m)
    del m.bias
    assert list(m.state_dict()) == ["weight"]


def test_module_init_arguments_and_missing_forward():
    with pytest.raises(TypeError, match=r"Module.__init__\(\) takes 1 positional argument but 2 were given"):
        nn.Module(3)
    with pytest.raises(NotImplementedError, match=r'Module \[Module\] is missing the required "forward" function'):
        nn.Module()(1)
    with pytest.raises(NotImplementedError, match=r'Module \[ModuleList\] is missing'):
        nn.ModuleList()(1)


def test_get_submodule_parameter_buffer():
    m = nn.Sequential(nn.Sequential(nn.Linear(1, 2), nn.BatchNorm1d(2)))
    assert isinstance(m.get_submodule("0.0"), nn.Linear)
    assert m.get_submodule("") is m
    assert tuple(m.get_parameter("0.0.bias").shape) == (2,)
    assert m.get_buffer("0.1.running_var") is m[0][1].running_var
    with pytest.raises(AttributeError):
        m.get_submodule("0.5")


# ---- apply / modes / grads / dtype -----------------------------------------------------------------

def test_apply_visits_children_first():
    m = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU()))
    seen = []
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    assert seen == ["Linear", "ReLU", "Sequential", "Sequential"]


def test_apply_init_weights():
    m = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))

    def init(mod):
        if isinstance(mod, nn.Linear):
            nn.init.constant_(mod.weight, 0.5)
            nn.init.zeros_(mod.bias)
    m.apply(init)
    out = m(torch.ones(1, 3))
    np.testing.assert_allclose(out.detach().numpy(), [[2.25, 2.25]])


def test_train_eval_propagate():
    m = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.Dropout(), nn.BatchNorm1d(1)))
    assert all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    assert m.train() is m
    assert all(x.training for x in m.modules())
    m.train(False)
    assert not m[1][0].training
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        m.train("yes")


def test_zero_grad_set_to_none_and_zeros():
    m = nn.Linear(2, 1)
    m(torch.ones(1, 2)).sum().backward()
    np.testing.assert_allclose(m.weight.grad.numpy(), [[1.0, 1.0]])
    m.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(m.weight.grad.numpy(), [[0.0, 0.0]])
    np.testing.assert_array_equal(m.bias.grad.numpy(), [0.0])
    m(torch.ones(1, 2)).sum().backward()
    np.testing.assert_allclose(m.bias.grad.numpy(), [1.0])
    m.zero_grad()  # default: set_to_none=True
    assert m.weight.grad is None and m.bias.grad is None


def test_requires_grad_():
    m = nn.Sequential(nn.Linear(2, 1), nn.Linear(1, 1))
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())
    m[0].requires_grad_()
    assert [p.requires_grad for p in m.parameters()] == [True, True, False, False]
    out = m(torch.ones(1, 2)).sum()
    out.backward()
    assert m[0].weight.grad is not None and m[1].weight.grad is None


def test_to_dtype_keeps_parameter_identity():
    m = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    w = m[0].weight
    assert m.to(torch.float64) is m
    assert m[0].weight is w
    assert w.dtype == torch.float64 and w.requires_grad
    assert m[1].running_mean.dtype == torch.float64
    assert m[1].num_batches_tracked.dtype == torch.int64  # integer buffers are left alone
    m.float()
    assert w.dtype == torch.float32
    m.double()
    assert m[0].bias.dtype == torch.float64
    m.to(dtype=torch.float16)
    assert m.state_dict()["0.weight"].dtype == torch.float16
    m.to(torch.zeros(1, dtype=torch.float32))
    assert w.dtype == torch.float32
    assert m.to("cpu") is m
    with pytest.raises(TypeError, match="nn.Module.to only accepts floating point"):
        m.to(torch.int64)


def test_to_converts_existing_grad():
    m = nn.Linear(1, 1)
    m(torch.ones(1, 1)).sum().backward()
    m.double()
    assert m.weight.grad.dtype == torch.float64


def test_double_module_computes_in_float64():
    m = nn.Linear(3, 2).double()
    y = m(torch.ones(4, 3, dtype=torch.float64))
    assert y.dtype == torch.float64


# ---- state dicts ------------------------------------------------------------------------------------

def test_state_dict_keys_pytorch_names():
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()))
    assert list(m.state_dict()) == [
        "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
        "1.num_batches_tracked", "2.0.weight", "2.0.bias"]
    named = Net()
    assert list(named.state_dict()) == ["scale", "step", "fc.weight", "fc.bias", "bn.weight", "bn.bias",
                                        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]


def test_state_dict_values_are_detached_and_shared():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    assert not sd["weight"].requires_grad
    with torch.no_grad():
        m.weight.fill_(3.0)
    np.testing.assert_array_equal(sd["weight"].numpy(), np.full((2, 2), 3.0))  # same storage
    kv = m.state_dict(keep_vars=True)
    assert kv["weight"] is m.weight
    assert list(m.state_dict(prefix="enc.")) == ["enc.weight", "enc.bias"]


def test_load_state_dict_roundtrip_copies_in_place():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    w = b.weight
    result = b.load_state_dict(a.state_dict())
    assert b.weight is w
    np.testing.assert_array_equal(b.weight.detach().numpy(), a.weight.detach().numpy())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    # later changes to a do not leak into b
    with torch.no_grad():
        a.weight.add_(1.0)
    assert not np.allclose(b.weight.detach().numpy(), a.weight.detach().numpy())


def test_load_state_dict_strict_missing_and_unexpected_message():
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    sd = m.state_dict()
    del sd["1.running_mean"]
    sd["1.foo.bar"] = torch.zeros(1)
    sd["2.weight"] = torch.zeros(1)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(sd)
    assert str(e.value) == (
        "Error(s) in loading state_dict for Sequential:\n"
        '\tMissing key(s) in state_dict: "1.running_mean". \n'
        # the root reports its own unexpected keys first, then each child its own
        '\tUnexpected key(s) in state_dict: "2.weight", "1.foo.bar". ')


def test_load_state_dict_size_mismatch_message():
    m = nn.Linear(2, 3)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict({"weight": torch.zeros(3, 4), "bias": torch.zeros(3)})
    msg = str(e.value)
    assert msg.startswith("Error(s) in loading state_dict for Linear:\n\tsize mismatch for weight: ")
    assert re.search(r"copying a param with shape \w+\.Size\(\[3, 4\]\) from checkpoint, the shape in "
                     r"current model is \w+\.Size\(\[3, 2\]\)\.", msg)
    # size mismatches are errors even with strict=False
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        m.load_state_dict({"weight": torch.zeros(2, 2)}, strict=False)


def test_load_state_dict_non_strict_returns_named_tuple():
    m = nn.Linear(2, 3)
    sd = m.state_dict()
    del sd["bias"]
    sd["extra"] = torch.zeros(1)
    res = m.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["bias"]
    assert res.unexpected_keys == ["extra"]
    missing, unexpected = res  # a NamedTuple
    assert missing == ["bias"] and unexpected == ["extra"]
    assert repr(res) == "_IncompatibleKeys(missing_keys=['bias'], unexpected_keys=['extra'])"


def test_load_state_dict_batchnorm_without_num_batches_tracked():
    # a plain dict carries no version metadata: like PyTorch, an old-format BatchNorm checkpoint
    # without num_batches_tracked loads
    bn = nn.BatchNorm1d(3)
    sd = {k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
    assert bn.load_state_dict(sd).missing_keys == []
    # but a current-format state dict (with metadata) reports it
    sd = bn.state_dict()
    del sd["num_batches_tracked"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "num_batches_tracked"'):
        bn.load_state_dict(sd)


def test_load_state_dict_assign():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.load_state_dict(a.state_dict(), assign=True)
    assert isinstance(b.weight, nn.Parameter) and b.weight.requires_grad
    np.testing.assert_array_equal(b.weight.detach().numpy(), a.weight.detach().numpy())


def test_load_state_dict_rejects_non_dict():
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        nn.Linear(1, 1).load_state_dict([1, 2])


def test_state_dict_roundtrip_through_deepcopy():
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    c = copy.deepcopy(m)
    assert c[0].weight is not m[0].weight
    for (k1, v1), (k2, v2) in zip(m.state_dict().items(), c.state_dict().items()):
        assert k1 == k2
        np.testing.assert_array_equal(v1.numpy(), v2.numpy())


# ---- hooks ------------------------------------------------------------------------------------------

def test_forward_pre_hook_modifies_args_and_removal():
    m = nn.Linear(2, 2, bias=False)
    nn.init.eye_(m.weight)
    h = m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    np.testing.assert_allclose(m(torch.ones(1, 2)).detach().numpy(), [[2.0, 2.0]])
    h.remove()
    np.testing.assert_allclose(m(torch.ones(1, 2)).detach().numpy(), [[1.0, 1.0]])
    # a single returned value is wrapped into a tuple
    ident = nn.Identity()
    ident.register_forward_pre_hook(lambda mod, args: args[0] + 1)
    np.testing.assert_allclose(ident(torch.zeros(1)).numpy(), [1.0])


def test_forward_hook_modifies_output_order_and_removal():
    m = nn.Identity()
    calls = []
    h1 = m.register_forward_hook(lambda mod, args, out: out * 3)
    m.register_forward_hook(lambda mod, args, out: calls.append((mod, args[0].tolist(), out.tolist())))
    np.testing.assert_allclose(m(torch.ones(1)).numpy(), [3.0])
    assert calls == [(m, [1.0], [3.0])]  # the second hook sees the first one's output
    h1.remove()
    np.testing.assert_allclose(m(torch.ones(1)).numpy(), [1.0])
    m2 = nn.Identity()
    m2.register_forward_hook(lambda mod, a, o: o + 1)
    m2.register_forward_hook(lambda mod, a, o: o * 10, prepend=True)
    np.testing.assert_allclose(m2(torch.ones(1)).numpy(), [11.0])


def test_hooks_with_kwargs_and_context_manager_removal():
    class Add(nn.Module):
        def forward(self, x, k=0):
            return x + k

    m = Add()
    with m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"k": 5}), with_kwargs=True):
        np.testing.assert_allclose(m(torch.zeros(1), k=1).numpy(), [5.0])
    np.testing.assert_allclose(m(torch.zeros(1), k=1).numpy(), [1.0])
    seen = {}
    m.register_forward_hook(lambda mod, args, kwargs, out: seen.update(kwargs), with_kwargs=True)
    m(torch.zeros(1), k=2)
    assert seen == {"k": 2}


def test_hook_on_submodule_inside_sequential():
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    acts = {}
    seq[0].register_forward_hook(lambda mod, a, o: acts.__setitem__("fc", o.detach()))
    seq(torch.ones(3, 2))
    assert tuple(acts["fc"].shape) == (3, 2)


# ---- repr -------------------------------------------------------------------------------------------

def test_repr_nested_sequential():
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Dropout(0.2)))
    assert repr(m) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "    (1): Dropout(p=0.2, inplace=False)\n"
        "  )\n"
        ")")
    assert repr(nn.Sequential()) == "Sequential()"
    assert repr(nn.Module()) == "Module()"


def test_repr_custom_module_and_multiline_extra_repr():
    class A(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(1, 1)

        def extra_repr(self):
            return "x=1\ny=2"
    assert repr(A()) == "A(\n  x=1\n  y=2\n  (l): Linear(in_features=1, out_features=1, bias=True)\n)"
    assert repr(Net()) == (
        "Net(\n"
        "  (fc): Linear(in_features=3, out_features=4, bias=True)\n"
        "  (bn): BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)\n"
        ")")


def test_repr_module_list_folds_repeats_and_module_dict():
    ml = nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.Linear(1, 2), nn.ReLU()])
    assert repr(ml) == ("ModuleList(\n  (0-1): 2 x ReLU()\n  (2): Linear(in_features=1, out_features=2, bias=True)\n"
                        "  (3): ReLU()\n)")
    assert repr(nn.ModuleList()) == "ModuleList()"
    md = nn.ModuleDict({"a": nn.ReLU(), "b": nn.Linear(1, 2)})
    assert repr(md) == "ModuleDict(\n  (a): ReLU()\n  (b): Linear(in_features=1, out_features=2, bias=True)\n)"


def test_repr_parameter_list_and_dict():
    pl = nn.ParameterList([nn.Parameter(torch.zeros(2, 3)), nn.Parameter(torch.zeros(4))])
    assert re.fullmatch(r"ParameterList\(\n    \(0\): Parameter containing: \[\w+\.float32 of size 2x3\]\n"
                        r"    \(1\): Parameter containing: \[\w+\.float32 of size 4\]\n\)", repr(pl))
    pd = nn.ParameterDict({"a": nn.Parameter(torch.zeros(2, 3))})
    assert re.fullmatch(r"ParameterDict\(  \(a\): Parameter containing: \[\w+\.FloatTensor of size 2x3\]\)",
                        repr(pd))


# ---- containers ---------------------------------------------------------------------------------

def test_sequential_indexing_slicing_len_iter():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    s = nn.Sequential(a, b, c)
    assert len(s) == 3
    assert s[0] is a and s[-1] is c and s[-3] is a
    sub = s[1:]
    assert type(sub) is nn.Sequential and list(sub._modules) == ["1", "2"] and sub[0] is b
    assert list(s) == [a, b, c]
    with pytest.raises(IndexError, match="index 3 is out of range"):
        s[3]
    y = s(torch.ones(4, 2))
    assert tuple(y.shape) == (4, 1)


def test_sequential_ordered_dict_and_mutation():
    s = nn.Sequential(OrderedDict([("fc", nn.Linear(1, 2)), ("act", nn.Tanh()), ("out", nn.Sigmoid())]))
    assert names(s.named_children()) == ["fc", "act", "out"]
    assert s.act is s[1]
    assert list(s[1:]._modules) == ["act", "out"]
    del s[0]
    assert list(s._modules) == ["0", "1"]  # renumbered, as PyTorch does
    t = nn.Sequential(nn.ReLU())
    t.append(nn.Tanh())
    t.insert(1, nn.Sigmoid())
    t.extend([nn.ELU()])
    assert [type(m).__name__ for m in t] == ["ReLU", "Sigmoid", "Tanh", "ELU"]
    t[-1] = nn.GELU()
    assert isinstance(t[3], nn.GELU)
    popped = t.pop(1)
    assert isinstance(popped, nn.Sigmoid) and list(t._modules) == ["0", "1", "2"]
    u = nn.Sequential(nn.ReLU()) + nn.Sequential(nn.Tanh())
    assert [type(m).__name__ for m in u] == ["ReLU", "Tanh"]


def test_module_list():
    ml = nn.ModuleList([nn.ReLU()])
    ml.append(nn.Tanh())
    ml.extend([nn.Sigmoid()])
    ml.insert(0, nn.ELU())
    ml += [nn.GELU()]
    assert [type(m).__name__ for m in ml] == ["ELU", "ReLU", "Tanh", "Sigmoid", "GELU"]
    assert len(ml) == 5 and isinstance(ml[-1], nn.GELU)
    assert type(ml[1:3]) is nn.ModuleList and len(ml[1:3]) == 2
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2", "3"] and isinstance(ml[0], nn.ReLU)
    with pytest.raises(IndexError, match="index 9 is out of range"):
        ml[9]
    holder = nn.Module()
    holder.layers = nn.ModuleList([nn.Linear(1, 1) for _ in range(2)])
    assert names(holder.named_parameters()) == ["layers.0.weight", "layers.0.bias", "layers.1.weight",
                                                "layers.1.bias"]


def test_module_dict():
    md = nn.ModuleDict([("x", nn.ReLU())])
    md["y"] = nn.Tanh()
    md.update({"z": nn.ELU()})
    assert list(md.keys()) == ["x", "y", "z"] and list(md) == ["x", "y", "z"]
    assert "y" in md and len(md) == 3
    assert isinstance(md.pop("x"), nn.ReLU) and list(md.keys()) == ["y", "z"]
    assert [type(v).__name__ for v in md.values()] == ["Tanh", "ELU"]
    assert [k for k, _ in md.items()] == ["y", "z"]
    assert names(md.named_children()) == ["y", "z"]


def test_parameter_list_and_dict():
    pl = nn.ParameterList([torch.zeros(2), nn.Parameter(torch.ones(3))])
    pl.append(torch.ones(1))
    assert len(pl) == 3
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in pl)  # tensors are wrapped
    assert names(pl.named_parameters()) == ["0", "1", "2"]
    assert tuple(pl[-1].shape) == (1,)
    holder = nn.Module()
    holder.ps = pl
    assert names(holder.named_parameters()) == ["ps.0", "ps.1", "ps.2"]
    pd = nn.ParameterDict({"a": torch.zeros(2)})
    pd["b"] = nn.Parameter(torch.ones(1))
    assert list(pd.keys()) == ["a", "b"] and isinstance(pd["a"], nn.Parameter)
    assert names(pd.named_parameters()) == ["a", "b"]


def test_parameter_basics():
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    assert p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.], requires_grad=True)")
    q = nn.Parameter(torch.tensor([1.0]), requires_grad=False)
    assert not q.requires_grad
    e = nn.Parameter()
    assert tuple(e.shape) == (0,) and e.requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(torch.tensor([1]))


# ---- backward hooks, state-dict hooks, extra state ------------------------------------------------

def _lin123():
    m = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    return m


def test_full_backward_hook_sees_grad_input_and_output():
    m = _lin123()
    log = []
    m.register_full_backward_hook(lambda mod, gi, go: log.append((mod, [g.tolist() for g in gi],
                                                                  [g.tolist() for g in go])))
    x = torch.ones(1, 3, requires_grad=True)
    (m(x) * torch.tensor([[1.0, 2.0]])).sum().backward()
    # grad_output = [[1, 2]]; grad_input = grad_output @ W
    assert log == [(m, [[[9.0, 12.0, 15.0]]], [[[1.0, 2.0]]])]
    np.testing.assert_allclose(x.grad.numpy(), [[9.0, 12.0, 15.0]])


def test_full_backward_hook_replaces_grad_input_and_pre_hook_grad_output():
    m = _lin123()
    h = m.register_full_backward_hook(lambda mod, gi, go: (gi[0] * 10,))
    x = torch.ones(1, 3, requires_grad=True)
    m(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[50.0, 70.0, 90.0]])
    np.testing.assert_allclose(m.weight.grad.numpy(), np.ones((2, 3)))  # parameter grads are not affected
    h.remove()
    m2 = _lin123()
    seen = []
    m2.register_full_backward_pre_hook(lambda mod, go: (go[0] * 2,))
    m2.register_full_backward_hook(lambda mod, gi, go: seen.append(go[0].tolist()))
    x = torch.ones(1, 3, requires_grad=True)
    m2(x).sum().backward()
    assert seen == [[[2.0, 2.0]]]                       # hooks see the replaced grad_output
    np.testing.assert_allclose(x.grad.numpy(), [[10.0, 14.0, 18.0]])
    np.testing.assert_allclose(m2.weight.grad.numpy(), np.full((2, 3), 2.0))
    bad = nn.Linear(2, 2)
    bad.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="Backward hook returned an invalid number of grad_input, got 2, but "
                                           "expected 1"):
        bad(torch.ones(1, 2, requires_grad=True)).sum().backward()


def test_full_backward_hook_without_input_grad_and_order():
    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    order = []
    m[1].register_full_backward_hook(lambda mod, gi, go: order.append(("relu", gi[0] is None)))
    m[0].register_full_backward_hook(lambda mod, gi, go: order.append(("linear", gi[0] is None)))
    with pytest.warns(UserWarning, match="Full backward hook is firing when gradients are computed with respect "
                                         "to module outputs since no inputs require gradients"):
        m(torch.ones(1, 2)).sum().backward()
    assert order == [("relu", False), ("linear", True)]  # reverse order; the Linear's input needs no grad


def test_state_dict_and_load_hooks():
    lin = nn.Linear(1, 1)
    log = []
    lin.register_state_dict_pre_hook(lambda mod, prefix, keep_vars: log.append(prefix))
    lin.register_state_dict_post_hook(lambda mod, sd, prefix, meta: sd.pop(prefix + "bias") and None)
    seq = nn.Sequential(lin)
    assert list(seq.state_dict()) == ["0.weight"] and log == ["0."]
    lin2 = nn.Linear(1, 1)
    lin2.register_load_state_dict_pre_hook(lambda mod, sd, prefix, *rest: sd.update({prefix + "bias": torch.zeros(1)}))
    seen = []
    lin2.register_load_state_dict_post_hook(lambda mod, keys: seen.append(list(keys.missing_keys)))
    assert nn.Sequential(lin2).load_state_dict({"0.weight": torch.zeros(1, 1)}).missing_keys == []
    assert seen == [[]]
    lin3 = nn.Linear(1, 1)
    lin3.register_load_state_dict_post_hook(lambda mod, keys: keys.missing_keys.clear())
    assert lin3.load_state_dict({"weight": torch.zeros(1, 1)}).missing_keys == []


def test_extra_state_roundtrip():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(1, 1)
            self.steps = 3

        def get_extra_state(self):
            return {"steps": self.steps}

        def set_extra_state(self, state):
            self.steps = state["steps"]

    a = Counter()
    sd = a.state_dict()
    assert list(sd) == ["_extra_state", "lin.weight", "lin.bias"]
    b = Counter()
    b.steps = 0
    b.load_state_dict(sd)
    assert b.steps == 3
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "_extra_state"'):
        Counter().load_state_dict({k: v for k, v in sd.items() if k != "_extra_state"})
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "_extra_state"'):
        nn.Linear(1, 1).load_state_dict({"weight": torch.zeros(1, 1), "bias": torch.zeros(1), "_extra_state": 1})


def test_set_submodule_and_compile():
    m = nn.Sequential(nn.Sequential(nn.Linear(1, 1)))
    m.set_submodule("0.0", nn.ReLU())
    assert isinstance(m[0][0], nn.ReLU)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(5, 3)
    eager = net(x).detach().numpy()
    net.compile()
    np.testing.assert_allclose(net(x).detach().numpy(), eager, rtol=1e-5, atol=1e-6)
