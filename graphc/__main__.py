"""The ``graphc`` command: ``graphc dump SCRIPT.py --out DIR --format text|dot|html [-- script args]``.

Runs the script; every function it compiles writes its stages (traced graph, graph after each
pass, forward/backward split, generated code, DOT pictures with --format dot, a page per compiled
function drawing them with --format html, linked from DIR/index.html) under DIR.
"""
from __future__ import annotations

import argparse
import os
import runpy
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="graphc", description="graphc tools")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="run a script and write every compiled function's stages to a folder")
    d.add_argument("--out", default="graphc_dump", help="output folder (default: graphc_dump)")
    d.add_argument("--format", choices=["text", "dot", "html"], default="text",
                   help="'dot' also writes Graphviz pictures of each graph; 'html' a page per compiled "
                        "function drawing every stage (open DIR/index.html)")
    d.add_argument("script", help="the Python script to run")
    # graphc's options may come before or after the script; everything else (or everything after
    # a `--`) is passed to the script
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, script_args = argv[:cut], argv[cut + 1:]
    ns, extra = p.parse_known_args(argv)
    ns.args = extra + script_args
    if not os.path.isfile(ns.script):
        p.error(f"no such script: {ns.script}")
    try:
        os.makedirs(ns.out, exist_ok=True)
    except OSError as e:  # a file in the way, no permission: one line, no traceback
        print(f"graphc dump: error: cannot create the output folder {ns.out}: {e.strerror}", file=sys.stderr)
        return 2
    from graphc.compiler import dump
    dump.configure(ns.out, ns.format)
    sys.argv = [ns.script] + ns.args
    sys.path.insert(0, os.path.dirname(os.path.abspath(ns.script)))
    try:
        runpy.run_path(ns.script, run_name="__main__")
    except dump.DumpError as e:  # the folder went away or became unwritable while the script ran
        print(f"graphc dump: error: {e}", file=sys.stderr)
        return 1
    written = dump.written()
    print(f"graphc dump: wrote {len(written)} compiled graph(s) to {os.path.abspath(ns.out)}", file=sys.stderr)
    for w in written:
        print(f"  {w}", file=sys.stderr)
    if ns.format == "html" and written:
        print(f"graphc dump: open {os.path.join(os.path.abspath(ns.out), 'index.html')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
