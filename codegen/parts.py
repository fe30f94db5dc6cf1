"""Large host functions in parts.

Python's ``compile`` holds the syntax tree of a whole source at once: about 2.5 KB per statement,
so the host function of a graph with a few hundred thousand nodes (an RNN unrolled over a
thousand steps) took more than half a gigabyte just to be compiled. Past ``PART_LINES`` lines,
the host function is written as a chain of part functions, each a whole number of schedule steps:

    def graphc_f(in_x, in_w, _ws):
        v3, v9, = _graphc_f_part0(in_x, in_w, _ws)
        v20, = _graphc_f_part1(in_w, v3, v9, _ws)
        return (v20,)

    def _graphc_f_part0(in_x, in_w, _ws):
        tpoi_1_0, v4 = _ws[0], _ws[1]
        ...the steps' lines, unchanged...
        return (v3, v9,)

A part takes the graph inputs and the values of earlier parts it reads, takes the workspace
buffers it uses from ``_ws``, and returns the values later parts or the result read. Each part
is a top-level function, so the loader compiles the source one function at a time
(``top_level_chunks``) and the syntax trees never exist all at once.
"""
from __future__ import annotations

import os
import re

from .host import workspace_buffers
from .schedule import Access, CallStep, Kernel, Schedule

# lines of steps per part (a part holds whole steps, so it may hold more); GRAPHC_PART_LINES
# sets it (a small value writes every compiled function in parts: a debugging aid)
PART_LINES = int(os.environ.get("GRAPHC_PART_LINES", "3000"))

_IDENT = re.compile(r"[A-Za-z_]\w*")
_BINDS = re.compile(r"    ([A-Za-z_]\w*) = ")  # a statement of the host function binding a name
# names of values the code generator binds once and reads in later steps (a 0-d operand's
# cast, made at its first use), passed between parts like buffers
SHARED_PREFIX = "_shared"
_SHARED = re.compile(rf"\b{SHARED_PREFIX}\d+\b")


def split(lines: list[str], spans: list[tuple[int, int]], fn_name: str, s: Schedule) -> list[str]:
    """``lines`` of a host function (plan comments, its ``def``, the workspace unpacking, then
    the lines of each of ``s.steps`` at ``spans``, then the ``return``), as a chain of parts when
    the steps hold more than ``PART_LINES`` lines; else unchanged.

    The host function's own locals mirror those of the unsplit function: a part returns every
    name it binds that a later part or the ``return`` reads, and the host binds it under the
    same name; a part receives the names the host has bound (inputs, earlier parts' results)
    and takes the other workspace buffers it reads from ``_ws``. A workspace buffer that a step
    rebinds (``v3 = np.full(...)``) so stays rebound for the parts after it, as it would."""
    if not spans or spans[-1][1] - spans[0][0] <= PART_LINES:
        return lines
    first, last = spans[0][0], spans[-1][1]
    def_at = next(i for i in range(first) if lines[i].startswith(f"def {fn_name}("))
    groups: list[list[tuple]] = [[]]   # per part: (start, end, step)
    size = 0
    for (a, b), step in zip(spans, s.steps):
        if size >= PART_LINES:
            groups.append([])
            size = 0
        groups[-1].append((a, b, step))
        size += b - a
    names = set(s.buffers) | set(s.inputs)
    temp_index = {name: i for i, name in enumerate(workspace_buffers(s))}
    uses: list[list[str]] = []    # per part: the buffers its steps read or write, in order
    binds: list[set[str]] = []    # per part: the names its statements bind (not nested functions')
    for group in groups:
        seen: dict[str, None] = {}
        bound: set[str] = set()
        for a, b, step in group:
            seen.update((x, None) for x in _buffers(step))
            for ln in lines[a:b]:
                m = _BINDS.match(ln)
                if m and (m.group(1) in names or _SHARED.fullmatch(m.group(1))):
                    bound.add(m.group(1))
                if SHARED_PREFIX in ln:
                    seen.update((x, None) for x in _SHARED.findall(ln))
        uses.append(list(seen))
        binds.append(bound)
    returned = {x for ln in lines[last:] for x in _IDENT.findall(ln) if x in names}
    read_later: list[set[str]] = [set() for _ in groups]
    after = set(returned)
    for k in reversed(range(len(groups))):
        read_later[k] = set(after)
        after.update(uses[k])
    in_host = set(s.inputs)        # names the host function has bound so far
    head = lines[:def_at] + [lines[def_at]]
    calls: list[str] = []
    parts: list[str] = []
    for k, (group, used) in enumerate(zip(groups, uses)):
        name = f"_{fn_name}_part{k}"
        params = [x for x in used if x in in_host]
        temps = sorted((x for x in used if x not in in_host and x in temp_index), key=temp_index.__getitem__)
        results = [x for x in used if x in binds[k] and x in read_later[k]]
        if temps:
            params.append("_ws")
        parts.append("")
        parts.append(f"def {name}({', '.join(params)}):")
        if temps:
            parts.append(f"    {', '.join(temps)}, = {', '.join(f'_ws[{temp_index[t]}]' for t in temps)},")
        for a, b, _ in group:
            parts.extend(lines[a:b])
        parts.append(f"    return ({''.join(x + ', ' for x in results)})")
        call = f"{name}({', '.join(params)})"
        calls.append(f"    {''.join(x + ', ' for x in results)}= {call}" if results else f"    {call}")
        in_host.update(results)
    return head + calls + lines[last:] + parts


def _buffers(step) -> list[str]:
    """The buffers a step's code reads or writes: a kernel's arguments, intermediates and
    outputs; an extern call's operands and result (views are rendered from these)."""
    if isinstance(step, Kernel):
        return [a.access.buffer for a in step.args] + list(step.temps.values()) + [o.buffer for o in step.outs]
    if isinstance(step, CallStep):
        return [a.buffer for a in step.args] + list(step.outs)
    return [a.buffer for a in step.args if isinstance(a, Access)] + [step.out]


def top_level_chunks(source: str) -> list[str]:
    """``source`` cut before each top-level ``def`` (comments above one go with it), each chunk
    padded with newlines so that line numbers stay those of the whole source: compiled one by
    one, they define the same functions as the whole source, with a syntax tree the size of one
    function at a time."""
    lines = source.split("\n")
    starts = [0]
    for i, ln in enumerate(lines):
        if ln.startswith("def ") and i > 0:
            j = i
            while j > starts[-1] and lines[j - 1].startswith("#"):
                j -= 1
            if j > starts[-1]:
                starts.append(j)
    starts.append(len(lines))
    return ["\n" * a + "\n".join(lines[a:b]) + "\n" for a, b in zip(starts, starts[1:]) if b > a]
