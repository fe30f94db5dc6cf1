"""The host function every backend generates around its kernels: signature, workspace buffers,
views rendered as array-module calls, and the returned outputs (copied where the caller could
otherwise share memory with the workspace, a broadcast, a library call's operand or another
output; outputs that are views of an input or of another output are returned as views, see
``output_aliases``)."""
from __future__ import annotations

from typing import Callable

from .schedule import Access, ExternCall, Schedule


def workspace_buffers(s: Schedule) -> list[str]:
    """The temp buffers, in the order the host function unpacks them from ``_ws``."""
    return [name for name, b in s.buffers.items() if b.role == "temp"]


def output_aliases(s: Schedule) -> list[bool]:
    """Per graph output, whether it is a graph input or another output's plain buffer (seen
    through views). The generated code returns these as views; the runtime copies them, except
    where the caller makes them views of the tensors they alias. Values saved for backward (from
    ``saved_from`` on) are never counted: they are returned as they are."""
    inputs = set(s.inputs)
    end = len(s.outputs) if s.saved_from is None else s.saved_from
    plain: dict[str, int] = {}
    for i, a in enumerate(s.outputs[:end]):
        if a.is_plain:
            plain.setdefault(a.buffer, i)
    return [i < end and (a.buffer in inputs or plain.get(a.buffer, i) != i) for i, a in enumerate(s.outputs)]


def _slices(index) -> str:
    # a negative-step range whose stop is before element 0 is written stop=-1 in the attribute
    parts = []
    for start, stop, step in index:
        parts.append(f"{start}:{'' if stop < 0 else stop}:{step}")
    return "[" + ", ".join(parts) + ("," if len(parts) == 1 else "") + "]"


class HostWriter:
    def __init__(self, s: Schedule, xp: str, fresh: Callable = lambda prim: True) -> None:
        self.s = s
        self.xp = xp
        self.fresh = fresh      # whether an extern call's result is new memory (never a view)
        self.lines: list[str] = []
        self.depth = 1          # indentation: 1 in the host function, more in functions nested in it

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    def comment_block(self, title: str, body: str = "") -> None:
        self.line(f"# -- {title}")
        for ln in body.splitlines():
            self.line(f"#    {ln}")

    def begin(self, fn_name: str) -> None:
        if self.s.plan is not None:  # the plan travels with the code it was made for
            self.lines += [f"# {ln}" for ln in self.s.plan.text().splitlines()]
        params = ", ".join(self.s.inputs + ["_ws"])
        self.lines.append(f"def {fn_name}({params}):")
        temps = workspace_buffers(self.s)
        if temps:
            self.line(f"{', '.join(temps)}, = _ws")

    def view(self, a: Access) -> str:
        """An expression for the buffer seen through ``a``'s views."""
        e = a.buffer
        xp = self.xp
        for name, attrs in a.views:
            at = dict(attrs)
            # the array methods: numpy's module functions are a Python wrapper around them
            # (np.reshape 3.7 us against 1.0 us for the method)
            if name == "reshape":
                e = f"{e}.reshape({tuple(at['shape'])!r})"
            elif name == "permute":
                e = f"{e}.transpose({tuple(at['dims'])!r})"
            elif name == "expand":
                e = f"{xp}.broadcast_to({e}, {tuple(at['shape'])!r})"
            elif name == "slice":
                e = f"{e}{_slices(at['index'])}"
            elif name == "select":  # (the ``...`` keeps a 0-d result a view, not a scalar)
                e = f"{e}[{':, ' * at['dim']}{at['index']}, ...]"
            else:
                raise ValueError(f"unknown view {name}")
        return e

    def end(self) -> None:
        s = self.s
        externs = {st.out: st for st in s.steps if isinstance(st, ExternCall)}
        returned: set[str] = set()
        outs = []
        for i, (a, alias) in enumerate(zip(s.outputs, output_aliases(s))):
            e = self.view(a)
            if alias or s.saved_from is not None and i >= s.saved_from:
                # saved for backward: the runtime watches inputs' versions instead; aliases:
                # the runtime copies them or makes them views of what they alias
                outs.append(e)
                continue
            role = s.buffers[a.buffer].role
            ext = externs.get(a.buffer)
            # the workspace goes back to its pool after the call: nothing returned may live there
            shared = (role == "temp" or a.buffer in returned or any(v[0] == "expand" for v in a.views)
                      or (ext is not None and not self.fresh(ext.prim)))
            returned.add(a.buffer)
            # a ufunc's 0-d result without out= is a numpy scalar: the caller gets a 0-d array (a
            # tensor's data must be an array; in-place ops write into it)
            outs.append(f"{self.xp}.array({e})" if shared else f"{self.xp}.asarray({e})" if not a.shape else e)
        self.line(f"return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")

    def source(self) -> str:
        return "\n".join(self.lines) + "\n"
