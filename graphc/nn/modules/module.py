"""``nn.Module``: parameter/buffer/submodule registration, hooks, modes, state dicts, repr."""
from __future__ import annotations

from collections import OrderedDict, namedtuple
from typing import Any, Callable, Iterator

from graphc.ir import dtypes

from ...autograd.graph import RemovableHandle, add_hook
from ...dispatch import current as _dispatch
from ...tensors import Tensor
from ..parameter import Buffer, Parameter, UninitializedBuffer


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _typename(obj) -> str:
    """torch.typename: 'graphc.FloatTensor' for tensors, the qualified class name otherwise."""
    if isinstance(obj, Tensor):
        return obj.type()
    cls = type(obj)
    module = cls.__module__ or ""
    return cls.__qualname__ if module in ("", "builtins") else f"{module}.{cls.__qualname__}"


def _addindent(s: str, n: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


# PyTorch's text, word for word, for the default get/set_extra_state
_UNREACHABLE = ("Reached a code path in Module.{}() that should never be called. Please file an issue at "
                "https://github.com/pytorch/pytorch/issues/new?template=bug-report.yml to report this bug.")

_HOOK_DICTS = ("_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks", "_state_dict_pre_hooks",
               "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")


def _scatter(n: int, positions: list, values) -> tuple:
    """The n-tuple with ``values`` at ``positions`` and None elsewhere (non-tensor slots)."""
    full = [None] * n
    for i, v in zip(positions, values):
        full[i] = v
    return tuple(full)


def _replacement_grads(r, expected: int, hook_kind: str, grads_name: str) -> tuple:
    """A backward (pre-)hook's non-None result as a tuple of ``expected`` gradients."""
    r = tuple(r) if isinstance(r, (tuple, list)) else (r,)
    if len(r) != expected:
        raise RuntimeError(f"{hook_kind} returned an invalid number of {grads_name}, got {len(r)}, but "
                           f"expected {expected}")
    return r


class _BackwardHookState:
    """One call's full backward hooks (PyTorch's BackwardHook): identity autograd Functions on the
    inputs and outputs catch grad_output (backward pre-hooks may replace it) and then grad_input
    (backward hooks see both and may replace grad_input)."""

    def __init__(self, module, hooks, pre_hooks) -> None:
        self.module, self.hooks, self.pre_hooks = module, hooks, pre_hooks
        self.grad_outputs = None
        self.n_inputs = 0
        self.input_pos = None

    @staticmethod
    def _wrap(state, kind, values, positions):
        wrapped = _HookIdentity.apply(state, kind, *[values[i] for i in positions])
        values = list(values)
        for i, w in zip(positions, wrapped):
            values[i] = w
        return values

    def setup_inputs(self, args):
        from ...autograd.grad_mode import is_grad_enabled
        self.n_inputs = len(args)
        pos = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        if not pos or not is_grad_enabled():
            return args
        self.input_pos = pos
        return tuple(self._wrap(self, "input", args, pos))

    def setup_outputs(self, out):
        from ...autograd.grad_mode import is_grad_enabled
        single = isinstance(out, Tensor)
        values = [out] if single else (list(out) if isinstance(out, (tuple, list)) else None)
        if values is None or not is_grad_enabled():
            return out
        self.n_outputs = len(values)
        self.output_pos = [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]
        if not self.output_pos:
            return out
        values = self._wrap(self, "output", values, self.output_pos)
        return values[0] if single else type(out)(values)

    def backward(self, kind, grads):
        if kind == "output":
            full = _scatter(self.n_outputs, self.output_pos, grads)
            for hook in self.pre_hooks:
                r = hook(self.module, full)
                if r is not None:
                    full = _replacement_grads(r, len(full), "Backward pre hook", "grad_output")
            self.grad_outputs = full
            if self.input_pos is None and self.hooks:
                import warnings
                warnings.warn("Full backward hook is firing when gradients are computed with respect to module "
                              "outputs since no inputs require gradients. See https://docs.pytorch.org/docs/main/"
                              "generated/torch.nn.Module.html#torch.nn.Module.register_full_backward_hook for more "
                              "details.", stacklevel=2)
                none = (None,) * self.n_inputs
                for hook in self.hooks:
                    r = hook(self.module, none, self.grad_outputs)
                    if r is not None and not (isinstance(r, tuple) and all(e is None for e in r)):
                        raise RuntimeError("Backward hook for Modules where no input requires gradient should "
                                           "always return None or None for all gradients.")
            return tuple(full[i] for i in self.output_pos)
        grad_input = _scatter(self.n_inputs, self.input_pos, grads)
        for hook in self.hooks:
            r = hook(self.module, grad_input, self.grad_outputs)
            if r is not None:
                grad_input = _replacement_grads(r, len(grad_input), "Backward hook", "grad_input")
        return tuple(grad_input[i] for i in self.input_pos)


def _make_hook_identity():
    from ...autograd.function import Function

    class BackwardHookFunction(Function):
        @staticmethod
        def forward(ctx, state, kind, *tensors):
            ctx.state, ctx.kind = state, kind
            return tensors

        @staticmethod
        def backward(ctx, *grads):
            return (None, None) + tuple(ctx.state.backward(ctx.kind, grads))

    return BackwardHookFunction


class _LazyHookIdentity:
    fn = None

    def apply(self, *args):
        if _LazyHookIdentity.fn is None:
            _LazyHookIdentity.fn = _make_hook_identity()
        return _LazyHookIdentity.fn.apply(*args)


_HookIdentity = _LazyHookIdentity()


# ---- global hooks (``register_module_*_hook``): they apply to every module, before its own ----

_global_forward_pre_hooks: OrderedDict = OrderedDict()
_global_forward_hooks: OrderedDict = OrderedDict()
_global_forward_hooks_with_kwargs: set = set()
_global_backward_hooks: OrderedDict = OrderedDict()
_global_backward_pre_hooks: OrderedDict = OrderedDict()
_global_parameter_registration_hooks: OrderedDict = OrderedDict()
_global_buffer_registration_hooks: OrderedDict = OrderedDict()
_global_module_registration_hooks: OrderedDict = OrderedDict()


def register_module_forward_pre_hook(hook: Callable) -> RemovableHandle:
    """``hook(module, args)`` before every module's forward (and before its own pre-hooks); a
    non-None result replaces the arguments."""
    return add_hook(_global_forward_pre_hooks, hook)


def register_module_forward_hook(hook: Callable, *, with_kwargs: bool = False,
                                 always_call: bool = False) -> RemovableHandle:
    """``hook(module, args, output)`` (``hook(module, args, kwargs, output)`` with ``with_kwargs``)
    after every module's forward, before its own forward hooks; a non-None result replaces the
    output. ``always_call`` is accepted as for a module's own hooks (graphc calls hooks only after
    a forward that returned)."""
    h = add_hook(_global_forward_hooks, hook)
    if with_kwargs:
        _global_forward_hooks_with_kwargs.add(h.id)
    return h


def register_module_full_backward_hook(hook: Callable) -> RemovableHandle:
    """``hook(module, grad_input, grad_output)`` for every module's backward (eager only, as a
    module's own backward hooks)."""
    return add_hook(_global_backward_hooks, hook)


def register_module_full_backward_pre_hook(hook: Callable) -> RemovableHandle:
    """``hook(module, grad_output)`` before every module's gradients are computed."""
    return add_hook(_global_backward_pre_hooks, hook)


def register_module_backward_hook(hook: Callable) -> RemovableHandle:
    """Deprecated in PyTorch; graphc gives it the well-defined semantics of the full hook, as
    ``Module.register_backward_hook``."""
    return register_module_full_backward_hook(hook)


def register_module_parameter_registration_hook(hook: Callable) -> RemovableHandle:
    """``hook(module, name, param)`` whenever a module registers a parameter; a non-None result
    is registered instead."""
    return add_hook(_global_parameter_registration_hooks, hook)


def register_module_buffer_registration_hook(hook: Callable) -> RemovableHandle:
    """``hook(module, name, buffer)`` whenever a module registers a buffer; a non-None result is
    registered instead."""
    return add_hook(_global_buffer_registration_hooks, hook)


def register_module_module_registration_hook(hook: Callable) -> RemovableHandle:
    """``hook(module, name, submodule)`` whenever a module registers a submodule; a non-None
    result is registered instead."""
    return add_hook(_global_module_registration_hooks, hook)


def _registered(hooks: OrderedDict, module, name: str, value):
    """``value`` after the global registration hooks of its kind."""
    for hook in list(hooks.values()):
        out = hook(module, name, value)
        if out is not None:
            value = out
    return value


class Module:
    training: bool
    _version: int = 1
    call_super_init: bool = False
    dump_patches: bool = False

    def __init__(self, *args, **kwargs) -> None:
        if kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument "
                            f"'{next(iter(kwargs))}'")
        if args:
            raise TypeError(f"{type(self).__name__}.__init__() takes 1 positional argument but "
                            f"{len(args) + 1} were given")
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_hooks_with_kwargs"] = set()
        d["_forward_hooks_always_called"] = set()
        d["_forward_pre_hooks"] = OrderedDict()
        d["_forward_pre_hooks_with_kwargs"] = set()
        for name in _HOOK_DICTS:
            d[name] = OrderedDict()

    def forward(self, *input):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function')

    # ---- registration -----------------------------------------------------------------------

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_name(name, "parameter", "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{_typename(param)}' object to parameter '{name}' "
                            "(torch.nn.Parameter or None required)")
        if param is not None and param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be created "
                f"explicitly. To express '{name}' as a function of another Tensor, compute the value in "
                "the forward() method.")
        self._parameters[name] = (None if param is None else
                                  _registered(_global_parameter_registration_hooks, self, name, param))

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_name(name, "buffer", "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{_typename(tensor)}' object to buffer '{name}' "
                            "(torch Tensor or None required)")
        if isinstance(tensor, Buffer):
            persistent = tensor.persistent
        if isinstance(tensor, Buffer) and not isinstance(tensor, UninitializedBuffer):  # a lazy one stays itself
            tensor = Tensor._alias(tensor._data, tensor._version)
        self._buffers[name] = _registered(_global_buffer_registration_hooks, self, name, tensor)
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        self._check_name(name, "module", "_modules")
        self._modules[name] = _registered(_global_module_registration_hooks, self, name, module)

    register_module = add_module

    def _check_name(self, name: str, what: str, store: str) -> None:
        """PyTorch's checks, in its order, before ``name`` joins the ``store`` dict."""
        if not isinstance(name, str):
            raise TypeError(f"{what} name should be a string. Got {type(name).__name__}")
        if name == "":
            raise KeyError(f'{what} name can\'t be empty string ""')
        if "." in name:
            raise KeyError(f'{what} name can\'t contain "."')
        if hasattr(self, name) and name not in getattr(self, store):
            raise KeyError(f"attribute '{name}' already exists")

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._remove_from(name, "params")
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as parameter '{name}' "
                                "(torch.nn.Parameter or None expected)")
            params[name] = None
            return
        if isinstance(value, Module):
            if "_modules" not in d:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._remove_from(name, "modules")
            d["_modules"][name] = _registered(_global_module_registration_hooks, self, name, value)
            return
        modules = d.get("_modules")
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as child module '{name}' "
                                "(torch.nn.Module or None expected)")
            modules[name] = None
            return
        buffers = d.get("_buffers")
        if isinstance(value, Buffer) or (buffers is not None and name in buffers):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{_typename(value)}' as buffer '{name}' "
                                "(torch.Tensor or None expected)")
            if isinstance(value, Buffer):
                self._remove_from(name, "buffers")
                self.register_buffer(name, value, value.persistent)
            else:
                buffers[name] = _registered(_global_buffer_registration_hooks, self, name, value)
            return
        object.__setattr__(self, name, value)

    def _remove_from(self, name: str, keep: str) -> None:
        d = self.__dict__
        d.pop(name, None)
        for key, store in (("params", "_parameters"), ("buffers", "_buffers"), ("modules", "_modules")):
            if key != keep and store in d:
                d[store].pop(name, None)
        d.get("_non_persistent_buffers_set", set()).discard(name)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            s = d.get(store)
            if s is not None and name in s:
                return s[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in ("_parameters", "_buffers", "_modules"):
            s = self.__dict__.get(store)
            if s is not None and name in s:
                del s[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        keys = list(super().__dir__()) + list(self._parameters) + list(self._buffers) + list(self._modules)
        return sorted(set(keys))

    # ---- traversal --------------------------------------------------------------------------

    def _named_members(self, get_members, prefix: str = "", recurse: bool = True,
                       remove_duplicate: bool = True):
        memo = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for mod_prefix, mod in modules:
            for k, v in get_members(mod):
                if v is None or (remove_duplicate and id(v) in memo):
                    continue
                if remove_duplicate:
                    memo.add(id(v))
                yield (mod_prefix + ("." if mod_prefix else "") + k, v)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members(lambda m: m._parameters.items(), prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def named_children(self):
        memo = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in memo:
                memo.add(id(m))
                yield name, m

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True):
        if memo is None:
            memo = set()
        if id(self) in memo and remove_duplicate:
            return
        if remove_duplicate:
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def get_submodule(self, target: str) -> "Module":
        if target == "":
            return self
        mod = self
        for item in target.split("."):
            if not hasattr(mod, item):
                raise AttributeError(f"{type(mod).__name__} has no attribute `{item}`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError(f"`{item}` is not an nn.Module")
        return mod

    def get_parameter(self, target: str) -> Parameter:
        return self._get_member(target, "_parameters", "an nn.Parameter")

    def get_buffer(self, target: str) -> Tensor:
        return self._get_member(target, "_buffers", "a buffer")

    def _get_member(self, target: str, store: str, what: str):
        mod_path, _, name = target.rpartition(".")
        members = getattr(self.get_submodule(mod_path), store)
        if name not in members:
            raise AttributeError(f"`{name}` is not {what}")
        return members[name]

    # ---- modes and bulk changes -------------------------------------------------------------

    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for m in self.children():
            m.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p._grad is None:
                continue
            if set_to_none:
                p._grad = None
            else:
                p._grad = p._grad.detach()
                p._grad.zero_()

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _apply(self, fn: Callable[[Tensor], Tensor]) -> "Module":
        """Convert every parameter and buffer in place (their identity is kept, like PyTorch)."""
        for m in self.children():
            m._apply(fn)
        for name, p in self._parameters.items():
            if p is None:
                continue
            new = fn(p.detach())
            if new is not p and new._data is not p._data:
                p._data = new._data
                if p._grad is not None:
                    p._grad = fn(p._grad)
        for name, b in self._buffers.items():
            if isinstance(b, UninitializedBuffer):  # a lazy module's placeholder stays one, converted
                b._data = fn(b.detach())._data
            elif b is not None:
                self._buffers[name] = fn(b)
        return self

    def to(self, *args, **kwargs) -> "Module":
        """Move and/or cast every parameter and buffer in place (floating-point ones only change
        dtype); the Parameter objects stay the same, their data is replaced, as in PyTorch."""
        from ...methods import _parse_to
        from ...device import check_device
        dtype, device, _ = _parse_to(args, dict(kwargs))
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point or complex dtypes, but got desired dtype={dtype}")
        dev = None if device is None else check_device(device)
        if dtype is None and dev is None:
            return self
        return self._apply(lambda t: t.to(device=dev, dtype=dtype if t.dtype.is_floating_point else None))

    def float(self) -> "Module":
        return self.to(dtypes.float32)

    def double(self) -> "Module":
        return self.to(dtypes.float64)

    def half(self) -> "Module":
        return self.to(dtypes.float16)

    def type(self, dst_type) -> "Module":
        return self._apply(lambda t: t.type(dst_type))

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self, device=None) -> "Module":
        from ...methods import cuda_device
        return self.to(cuda_device(device))

    def share_memory(self) -> "Module":
        return self

    # ---- calling ----------------------------------------------------------------------------

    def _call_impl(self, *args, **kwargs):
        for hid, hook in [*_global_forward_pre_hooks.items(), *self._forward_pre_hooks.items()]:
            if hid in self._forward_pre_hooks_with_kwargs:
                r = hook(self, args, kwargs)
                if r is not None:
                    if not (isinstance(r, tuple) and len(r) == 2):
                        raise RuntimeError("forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                                           f"but got {r}.")
                    args, kwargs = r
            else:
                r = hook(self, args)
                if r is not None:
                    args = r if isinstance(r, tuple) else (r,)
        bw = None
        if self._backward_hooks or self._backward_pre_hooks or _global_backward_hooks or _global_backward_pre_hooks:
            _dispatch().eager_only(f"{type(self).__name__} has backward hooks (register_full_backward_hook or a "
                                   "global register_module_full_backward_hook), which run eagerly only")
            bw = _BackwardHookState(self, [*_global_backward_hooks.values(), *self._backward_hooks.values()],
                                    [*_global_backward_pre_hooks.values(), *self._backward_pre_hooks.values()])
            args = bw.setup_inputs(args)
        out = self.forward(*args, **kwargs)
        for hid, hook in [*_global_forward_hooks.items(), *self._forward_hooks.items()]:
            if hid in self._forward_hooks_with_kwargs or hid in _global_forward_hooks_with_kwargs:
                r = hook(self, args, kwargs, out)
            else:
                r = hook(self, args, out)
            if r is not None:
                out = r
        if bw is not None:
            out = bw.setup_outputs(out)
        return out

    def __call__(self, *args, **kwargs):
        d = _dispatch()
        mark = d.module_called(self)
        compiled = self.__dict__.get("_compiled_call_impl")
        out = (compiled if compiled is not None else self._call_impl)(*args, **kwargs)
        if mark is not None:  # a trace marks module calls: the outline pass may share repeated ones
            d.module_returned(mark, out)
        return out

    def compile(self, *args, **kwargs) -> None:
        """Compile this module's __call__ in place with graphc.compile (the same arguments)."""
        from ... import compile as graphc_compile
        self.__dict__["_compiled_call_impl"] = graphc_compile(self._call_impl, *args, **kwargs)

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output) -> tuple | None``; grad_input are the gradients
        w.r.t. the module's positional inputs (None for non-tensors), grad_output w.r.t. its outputs."""
        return add_hook(self._backward_hooks, hook, prepend)

    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_output) -> tuple | None``, called before the module's gradients."""
        return add_hook(self._backward_pre_hooks, hook, prepend)

    def register_backward_hook(self, hook) -> RemovableHandle:
        """Deprecated in PyTorch; graphc gives it the well-defined semantics of the full hook."""
        return self.register_full_backward_hook(hook)

    def register_state_dict_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, prefix, keep_vars)`` before this module's entries are collected."""
        return add_hook(self._state_dict_pre_hooks, hook)

    def register_state_dict_post_hook(self, hook) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata)``; may edit ``state_dict`` in place."""
        def checked(module, state_dict, prefix, local_metadata):
            if hook(module, state_dict, prefix, local_metadata) is not None:
                raise RuntimeError("state_dict post-hook must return None")
        return add_hook(self._state_dict_hooks, checked)

    def _register_state_dict_hook(self, hook) -> RemovableHandle:
        """The older private form, whose hook may return a replacement state dict."""
        return add_hook(self._state_dict_hooks, hook)

    def register_load_state_dict_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs)`` before this module loads; may edit ``state_dict`` in place."""
        def with_module(module, *args):
            return hook(module, *args)
        return add_hook(self._load_state_dict_pre_hooks, with_module)

    def _register_load_state_dict_pre_hook(self, hook, with_module: bool = False) -> RemovableHandle:
        if with_module:
            return self.register_load_state_dict_pre_hook(hook)
        return add_hook(self._load_state_dict_pre_hooks, lambda module, *args: hook(*args))

    def register_load_state_dict_post_hook(self, hook) -> RemovableHandle:
        """``hook(module, incompatible_keys)`` after loading; may edit the key lists in place."""
        return add_hook(self._load_state_dict_post_hooks, hook)

    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False) -> RemovableHandle:
        h = add_hook(self._forward_pre_hooks, hook, prepend)
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(h.id)
        return h

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        h = add_hook(self._forward_hooks, hook, prepend)
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(h.id)
        return h

    # ---- state dicts ------------------------------------------------------------------------

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        if self._has_extra_state("get_extra_state"):
            destination[prefix + "_extra_state"] = self.get_extra_state()

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        if args:  # legacy positional (destination, prefix, keep_vars)
            destination = args[0]
            if len(args) > 1:
                prefix = args[1]
            if len(args) > 2:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        metadata = getattr(destination, "_metadata", None)
        local_metadata = {"version": self._version}
        if metadata is not None:
            metadata[prefix[:-1]] = local_metadata
        for hook in self._state_dict_pre_hooks.values():
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        for hook in self._state_dict_hooks.values():
            r = hook(self, destination, prefix, local_metadata)
            if r is not None:
                destination = r
        return destination

    def get_extra_state(self):
        raise RuntimeError(_UNREACHABLE.format("get_extra_state"))

    def set_extra_state(self, state) -> None:
        raise RuntimeError(_UNREACHABLE.format("set_extra_state"))

    def _has_extra_state(self, name: str) -> bool:
        return getattr(type(self), name) is not getattr(Module, name)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors) -> None:
        """PyTorch's signature, so subclasses that override it (to rename or convert old keys) work."""
        from ...autograd.grad_mode import no_grad
        for hook in self._load_state_dict_pre_hooks.values():
            hook(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors)
        assign = local_metadata.get("assign_to_params_buffers", False)
        extra_key = prefix + "_extra_state"
        if self._has_extra_state("set_extra_state"):
            if extra_key in state_dict:
                self.set_extra_state(state_dict[extra_key])
            elif strict:
                missing.append(extra_key)
        elif strict and extra_key in state_dict:
            unexpected.append(extra_key)
        local = {**{k: v for k, v in self._parameters.items() if v is not None},
                 **{k: v for k, v in self._buffers.items()
                    if v is not None and k not in self._non_persistent_buffers_set}}
        for name, current in local.items():
            key = prefix + name
            if key not in state_dict:
                missing.append(key)
                continue
            value = state_dict[key]
            if not isinstance(value, Tensor):
                errors.append(f'While copying the parameter named "{key}", expected torch.Tensor or '
                              f'Tensor-like object from checkpoint but received {type(value)}')
                continue
            if tuple(value.shape) != tuple(current.shape):
                errors.append(f"size mismatch for {key}: copying a param with shape {value.shape} from "
                              f"checkpoint, the shape in current model is {current.shape}.")
                continue
            if assign:
                if name in self._parameters:
                    self._parameters[name] = value if isinstance(value, Parameter) else Parameter(value, current.requires_grad)
                else:
                    self._buffers[name] = value
            else:
                with no_grad():
                    current.copy_(value)
        if strict:
            for key in state_dict:
                if key.startswith(prefix) and key != extra_key:
                    rest = key[len(prefix):]
                    head = rest.split(".", 1)[0]
                    if "." not in rest and head not in local:
                        unexpected.append(key)
                    elif "." in rest and head not in self._modules:
                        unexpected.append(key)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False) -> _IncompatibleKeys:
        if not isinstance(state_dict, dict):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing: list[str] = []
        unexpected: list[str] = []
        errors: list[str] = []
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)
        if metadata is not None:
            state_dict._metadata = metadata

        def load(module: Module, local_state: dict, prefix: str) -> None:
            local_metadata = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
            if assign:
                local_metadata["assign_to_params_buffers"] = assign
            module._load_from_state_dict(local_state, prefix, local_metadata, True, missing, unexpected, errors)
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    load(child, {k: v for k, v in local_state.items() if k.startswith(child_prefix)}, child_prefix)
            if module._load_state_dict_post_hooks:
                keys = _IncompatibleKeys(missing, unexpected)
                for hook in module._load_state_dict_post_hooks.values():
                    if hook(module, keys) is not None:
                        raise RuntimeError("Hooks registered with ``register_load_state_dict_post_hook`` are not "
                                           "expected to return new values, if incompatible_keys need to be modified,"
                                           "it should be done inplace.")

        load(self, state_dict, "")
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected)))
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing)))
        if errors:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(
                type(self).__name__, "\n\t".join(errors)))
        return _IncompatibleKeys(missing, unexpected)

    # ---- repr -------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        children = [f"({name}): {_addindent(repr(m), 2)}" for name, m in self._modules.items()]
        main = self._get_name() + "("
        if lines and not children and len(lines) == 1:
            return main + lines[0] + ")"
        body = lines + children
        if not body:
            return main + ")"
        return main + "\n  " + "\n  ".join(body) + "\n)"

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_graphc_compiled", None)  # graphc.compile's code for this module: not copied or pickled
        return state

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        for name in _HOOK_DICTS:  # objects pickled by an older graphc
            self.__dict__.setdefault(name, OrderedDict())

    def set_submodule(self, target: str, module: "Module", strict: bool = False) -> None:
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if strict and not hasattr(parent, name):
            raise AttributeError(f"{parent._get_name()} has no attribute `{name}`")
        if hasattr(parent, name) and not isinstance(getattr(parent, name), Module) and getattr(parent, name) is not None:
            raise AttributeError(f"`{name}` is not an nn.Module")
        setattr(parent, name, module)

    def bfloat16(self) -> "Module":
        return self.to(dtypes.bfloat16)

    def to_empty(self, *, device=None, recurse: bool = True) -> "Module":
        return self

    def xpu(self, device=None) -> "Module":
        raise RuntimeError("graphc has no XPU backend")

    def ipu(self, device=None) -> "Module":
        raise RuntimeError("graphc has no IPU backend")

    def mtia(self, device=None) -> "Module":
        raise RuntimeError("graphc has no MTIA backend")

