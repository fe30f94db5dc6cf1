"""How much of PyTorch's public surface graphc has: per namespace, present / total and the counts
of names excluded (not supported, with a reason) and allowed (being delivered by other work).

``python tools/api_coverage.py`` prints the table README shows; ``--missing`` also lists every
name that is neither present, excluded nor allowed (tests/test_api_surface.py fails on those).

Data (tests/data/): ``torch_api_2.13.txt`` (PyTorch's names, written by tools/list_torch_api.py),
``api_excluded.txt`` and ``api_missing_allowed.txt``: lines ``namespace pattern reason...``, the
pattern an exact name or an ``fnmatch`` pattern (``*Storage``); ``#`` lines are group headings.
"""
from __future__ import annotations

import argparse
import fnmatch
import importlib
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
API_FILE = DATA / "torch_api_2.13.txt"
EXCLUDED_FILE = DATA / "api_excluded.txt"
ALLOWED_FILE = DATA / "api_missing_allowed.txt"


@dataclass(frozen=True)
class Rule:
    namespace: str
    pattern: str
    reason: str
    line: int

    def matches(self, namespace: str, name: str) -> bool:
        return namespace == self.namespace and fnmatch.fnmatchcase(name, self.pattern)


def torch_names(path: Path = API_FILE) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            ns, name = line.split()
            out.setdefault(ns, []).append(name)
    return out


def read_rules(path: Path) -> list[Rule]:
    """The rules of an exclusions/allowance file; a line without a reason is an error."""
    rules = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3 or not parts[2].strip():
            raise ValueError(f"{path.name}:{i}: expected 'namespace name reason', got {line!r}")
        rules.append(Rule(parts[0], parts[1], parts[2].strip(), i))
    return rules


def graphc_object(namespace: str):
    """graphc's counterpart of a torch namespace (``torch.nn.modules.activation`` ->
    the module ``graphc.nn.modules.activation``; ``torch.Tensor`` -> the class), or None."""
    import graphc
    if namespace == "torch.Tensor":
        return graphc.Tensor
    try:
        return importlib.import_module("graphc" + namespace[len("torch"):])
    except ImportError:
        return None


@dataclass
class Coverage:
    namespace: str
    total: int = 0
    present: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    stale_excluded: list[str] = field(default_factory=list)  # present in graphc, yet excluded


def coverage() -> tuple[list[Coverage], list[Rule]]:
    """Per-namespace coverage, and the stale rules: an exclusion that matches no name, an allowance
    that matches no missing name (its names exist now: remove the line)."""
    excluded, allowed = read_rules(EXCLUDED_FILE), read_rules(ALLOWED_FILE)
    used: set[Rule] = set()
    result = []
    for ns, names in sorted(torch_names().items()):
        cov, obj = Coverage(ns, total=len(names)), graphc_object(ns)
        for name in names:
            ex = next((r for r in excluded if r.matches(ns, name)), None)
            al = next((r for r in allowed if r.matches(ns, name)), None)
            if ex is not None:
                used.add(ex)
            if obj is not None and hasattr(obj, name):
                cov.present.append(name)
                if ex is not None:
                    cov.stale_excluded.append(name)
            elif ex is not None:
                cov.excluded.append(name)
            elif al is not None:
                cov.allowed.append(name)
                used.add(al)
            else:
                cov.missing.append(name)
        result.append(cov)
    unused = [r for r in excluded + allowed if r not in used]
    return result, unused


def fold_module_files(rows: list[Coverage]) -> list[Coverage]:
    """The ``torch.nn.modules.<file>`` rows summed into one (README's short table)."""
    files = [c for c in rows if c.namespace.startswith("torch.nn.modules.")]
    if not files:
        return rows
    folded = Coverage(f"torch.nn.modules.<file> ({len(files)} files)", total=sum(c.total for c in files))
    for c in files:
        for k in ("present", "excluded", "allowed", "missing"):
            getattr(folded, k).extend(getattr(c, k))
    out = [c for c in rows if c not in files]
    out.insert(out.index(next(c for c in out if c.namespace == "torch.nn.modules")) + 1, folded)
    return out


def table(rows: list[Coverage]) -> str:
    lines = ["| namespace | present / total | excluded | pending (allowance list) |", "|---|---|---|---|"]
    for c in rows:
        lines.append(f"| `{c.namespace}` | {len(c.present)} / {c.total} | {len(c.excluded)} | {len(c.allowed)} |")
    tot = [sum(len(getattr(c, k)) for c in rows) for k in ("present", "excluded", "allowed")]
    lines.append(f"| all | {tot[0]} / {sum(c.total for c in rows)} | {tot[1]} | {tot[2]} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description="graphc's coverage of PyTorch's public names")
    ap.add_argument("--missing", action="store_true", help="list names neither present, excluded nor allowed")
    ap.add_argument("--short", action="store_true", help="one row for all torch.nn.modules.<file> paths")
    args = ap.parse_args()
    rows, unused = coverage()
    print(table(fold_module_files(rows) if args.short else rows))
    if args.missing:
        for c in rows:
            if c.missing:
                print(f"\n{c.namespace} ({len(c.missing)} missing): {' '.join(c.missing)}")
            if c.stale_excluded:
                print(f"\n{c.namespace}: excluded, yet graphc has them: {' '.join(c.stale_excluded)}")
        for r in unused:
            print(f"unused rule: {r.namespace} {r.pattern}")


if __name__ == "__main__":
    main()
