"""IR text form: printing and parsing back (round-trips exactly).

    graph mlp(%x: f32[64,784], %w: f32[512,784] param) {
      %0: f32[784,512] = permute(%w) dims=[1,0]
      %1: f32[64,512] = matmul(%x, %0)
      return %1
    }
"""
from __future__ import annotations

import json
import math
import re

from . import dtypes as dt
from .dtypes import DType
from .graph import Graph, Value, format_type, primitive
from .primitive import TensorType


def format_attr(v) -> str:
    t = type(v)
    if t is int:  # the common attributes and scalar operands first (the cache key prints each node)
        return str(v)
    if t is float:  # repr writes inf, -inf and nan as the parser reads them
        return repr(v)
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, DType):
        return v.short
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(float(v))  # a numpy float64 (a float subclass) reprs as np.float64(...)
    if isinstance(v, complex):  # one token, as Python's complex() reads it: 1.5+2.0j
        im = format_attr(v.imag)
        return f"{format_attr(v.real)}{im if im[0] == '-' else '+' + im}j"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (tuple, list)):
        return "[" + ",".join(format_attr(x) for x in v) + "]"
    if isinstance(v, Graph):
        body = print_graph(v).rstrip("\n").replace("\n", "\n    ")
        return "{\n    " + body + "\n  }"
    raise TypeError(f"attribute value {v!r} of type {type(v).__name__} has no IR text form")


def format_node(n, bodies: bool = True, labels: dict | None = None) -> str:
    """One node's IR line; its source location, if known, as a trailing comment. ``bodies=False``
    leaves out a fused node's body (generated code's comments list it op by op). ``labels``:
    id(graph) -> the name a call's graph attributes are written as (``body=@cell``, printed once
    before the graph that calls it). (List comprehensions, not generators, inside the joins: a
    compile's cache key prints the whole traced graph, and this runs once per node.)"""
    outputs = n.outputs
    if len(outputs) == 1:
        v = outputs[0]
        outs = f"%{v.name}: {format_type(v.type)}"
    else:
        outs = ", ".join([f"%{v.name}: {format_type(v.type)}" for v in outputs])
    args = ", ".join(["%" + x.name if type(x) is Value else format_attr(x) for x in n.inputs])
    if n.attrs:
        attrs = "".join([f" {k}=@{labels[id(v)]}" if labels is not None and id(v) in labels else f" {k}={format_attr(v)}"
                         for k, v in n.attrs.items() if bodies or not isinstance(v, Graph)])
        return f"{outs} = {n.prim.name}({args}){attrs}  # {n.loc}" if n.loc else f"{outs} = {n.prim.name}({args}){attrs}"
    return f"{outs} = {n.prim.name}({args})  # {n.loc}" if n.loc else f"{outs} = {n.prim.name}({args})"


def print_graph(g: Graph) -> str:
    """The graph's text; the graphs its calls call come first, each once, named by a label
    that the calls refer to (``body=@label``)."""
    labels: dict[int, str] = {}
    texts: list[str] = []
    _print_called(g, labels, texts)
    texts.append(_print_one(g, g.name, labels))
    return "".join(texts)


def _print_called(g: Graph, labels: dict[int, str], texts: list[str]) -> None:
    for n in g.nodes:
        if n.prim.kind != "call":
            continue
        for v in n.attrs.values():
            if isinstance(v, Graph) and id(v) not in labels:
                _print_called(v, labels, texts)
                label = base = re.sub(r"\W", "_", v.name) or "body"
                taken = set(labels.values())
                k = 1
                while label in taken:
                    label, k = f"{base}_{k}", k + 1
                labels[id(v)] = label
                texts.append(_print_one(v, label, labels))


def _print_one(g: Graph, name: str, labels: dict[int, str]) -> str:
    params = ", ".join(f"%{v.name}: {format_type(v.type)}" + ("" if v.role == "input" else f" {v.role}")
                       for v in g.inputs)
    name = name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else json.dumps(name)
    lines = [f"graph {name}({params}) {{"]
    for n in g.nodes:
        lines.append("  " + format_node(n, labels=labels))
    lines.append("  return " + ", ".join(f"%{v.name}" for v in g.outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"


class ParseError(ValueError):
    pass


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n\r]*)  # never \r: Python ends a line there too (the comment reaches generated code)
  | (?P<value>%[A-Za-z0-9_.]+)
  | (?P<ref>@[A-Za-z0-9_]+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<complex>-?(?:inf|nan|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)[+-](?:inf|nan|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)j)
  | (?P<number>-?(?:(?:inf|nan)(?![A-Za-z0-9_])|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[\[\](){},:=])
""", re.VERBOSE)


class _Tokens:
    def __init__(self, text: str) -> None:
        self.toks: list[tuple[str, str, int]] = []
        # comments, by the index of the token they follow (a node's comment is its source location)
        self.comments: dict[int, str] = {}
        pos, line = 0, 1
        match, append = _TOKEN.match, self.toks.append
        while pos < len(text):
            m = match(text, pos)
            if not m:
                raise ParseError(f"line {line}: unexpected character {text[pos]!r}")
            kind, tok = m.lastgroup, m.group()
            if kind == "ws":
                line += tok.count("\n")
            elif kind == "comment":
                self.comments[len(self.toks) - 1] = tok[1:].strip()
            else:
                append((kind, tok, line))
            pos = m.end()
        self.i = 0
        self.graphs: dict[str, Graph] = {}  # graphs parsed so far, by name (what ``@name`` refers to)

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else ("eof", "", -1)

    def next(self):
        t = self.peek()
        self.i += 1
        return t

    def expect(self, text: str):
        kind, val, line = self.next()
        if val != text:
            raise ParseError(f"line {line}: expected {text!r}, got {val!r}")


def _parse_scalar(kind: str, val: str, line: int):
    if kind == "complex":
        return complex(val)
    if kind == "number":
        if val in ("inf", "-inf", "nan") or any(c in val for c in ".eE"):
            return float(val)
        return int(val)
    if kind == "string":
        return json.loads(val)
    if kind == "ident":
        if val in ("True", "False"):
            return val == "True"
        if val == "None":
            return None
        try:
            return dt.from_short(val)
        except KeyError:
            pass
    raise ParseError(f"line {line}: bad value {val!r}")


def _parse_attr(t: _Tokens):
    kind, val, line = t.peek()
    if val == "{":
        t.next()
        body = _parse_graph(t)
        t.expect("}")  # the body graph's brace
        t.expect("}")  # the attribute's brace
        return body
    if kind == "ref":
        t.next()
        if val[1:] not in t.graphs:
            raise ParseError(f"line {line}: {val} names no graph defined before it")
        return t.graphs[val[1:]]
    if val == "[":
        t.next()
        items = []
        while t.peek()[1] != "]":
            items.append(_parse_attr(t))
            if t.peek()[1] == ",":
                t.next()
        t.next()
        return tuple(items)
    t.next()
    return _parse_scalar(kind, val, line)


def _parse_type(t: _Tokens) -> TensorType:
    kind, val, line = t.next()
    try:
        d = dt.from_short(val)
    except KeyError:
        raise ParseError(f"line {line}: unknown dtype {val!r}") from None
    t.expect("[")
    shape = []
    while t.peek()[1] != "]":
        k, v, ln = t.next()
        if k != "number":
            raise ParseError(f"line {ln}: bad dimension {v!r}")
        shape.append(int(v))
        if t.peek()[1] == ",":
            t.next()
    t.next()
    return TensorType(tuple(shape), d)


def parse_graph(text: str) -> Graph:
    """The last graph of ``text``; the graphs before it are those its calls call."""
    t = _Tokens(text)
    while True:
        g = _parse_graph(t)
        t.expect("}")
        if t.peek()[0] == "eof":
            return g
        if t.peek()[1] != "graph":
            raise ParseError(f"line {t.peek()[2]}: unexpected text after the graph: {t.peek()[1]!r}")
        t.graphs[g.name] = g


def _parse_graph(t: _Tokens) -> Graph:
    t.expect("graph")
    kind, name, line = t.next()
    if kind not in ("ident", "string"):
        raise ParseError(f"line {line}: expected the graph's name, got {name!r}")
    g = Graph(json.loads(name) if kind == "string" else name)
    env: dict[str, Value] = {}
    t.expect("(")
    while t.peek()[1] != ")":
        name = t.next()[1][1:]
        t.expect(":")
        typ = _parse_type(t)
        role = "input"
        if t.peek()[0] == "ident":
            role = t.next()[1]
        env[name] = g.add_input(typ, role, name)
        if t.peek()[1] == ",":
            t.next()
    t.next()
    t.expect("{")
    while t.peek()[1] != "return":
        defs = []
        while True:
            kind, val, line = t.next()
            if kind != "value":
                raise ParseError(f"line {line}: expected a value definition, got {val!r}")
            t.expect(":")
            defs.append((val[1:], _parse_type(t)))
            if t.peek()[1] != ",":
                break
            t.next()
        t.expect("=")
        op = t.next()[1]
        try:
            prim = primitive(op)
        except KeyError as e:
            raise ParseError(f"line {line}: {e.args[0]}") from None
        t.expect("(")
        args = []
        while t.peek()[1] != ")":
            k, v, ln = t.peek()
            if k == "value":
                t.next()
                if v[1:] not in env:
                    raise ParseError(f"line {ln}: use of undefined value {v}")
                args.append(env[v[1:]])
            else:
                args.append(_parse_attr(t))
            if t.peek()[1] == ",":
                t.next()
        t.next()
        attrs = {}
        while t.peek()[0] == "ident" and t.i + 1 < len(t.toks) and t.toks[t.i + 1][1] == "=":
            key = t.next()[1]
            t.expect("=")
            attrs[key] = _parse_attr(t)
        loc = t.comments.get(t.i - 1, "")
        for name, _ in defs:
            if name in env:
                raise ParseError(f"line {line}: %{name} defined twice (SSA)")
        try:
            typ = prim.infer(*args, **attrs)
        except Exception as e:  # the type rule's own message names the problem
            raise ParseError(f"line {line}: {op}: {e}") from None
        if isinstance(typ, list):  # a node of several outputs (a fused kernel, a call)
            outs = g.add_multi_node(prim, args, attrs, typ, loc).outputs
        elif len(defs) == 1:
            outs = [g.add_node(prim, args, attrs, typ, loc)]
        else:
            raise ParseError(f"line {line}: {op} has one output, {len(defs)} values are defined")
        if len(outs) != len(defs):
            raise ParseError(f"line {line}: {len(defs)} values defined, {op} gives {len(outs)}")
        for (name, typ), out in zip(defs, outs):
            if out.type != typ:
                raise ParseError(f"line {line}: %{name} is declared {format_type(typ)}, the op gives {format_type(out.type)}")
            out.name = name
            env[name] = out
    t.next()
    outs = []
    while t.peek()[1] != "}":
        k, v, ln = t.next()
        if k == "value":
            if v[1:] not in env:
                raise ParseError(f"line {ln}: return of undefined value {v}")
            outs.append(env[v[1:]])
    g.set_outputs(outs)
    nums = [int(v.name) for n in g.nodes for v in n.outputs if v.name.isdigit()]
    g._counter = max(nums) + 1 if nums else 0
    return g
