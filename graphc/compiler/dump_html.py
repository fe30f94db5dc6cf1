"""The HTML dump: one self-contained page per compiled specialization (``--format html``).

The page draws the graph of every stage as SVG (laid out here, see ``graph_svg``), and clicking
a node shows its IR line, its source ``file:line`` and the generated code it became: the code's
comment blocks (``# -- kernel`` followed by the IR lines it computes) are matched to the final
graphs' nodes by those quoted lines; for earlier stages, whose nodes the passes renamed, the
page lists the blocks that quote the same primitive at the same source line. It also shows the
fusion decisions, the memory plan and the whole generated code. No network, no libraries: the
CSS and the script are inline, and everything taken from the IR is escaped.
"""
from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from graphc.ir.graph import Graph, Node, format_type
from graphc.ir.printer import format_node, parse_graph

from . import graph_svg

MAX_CODE_CHARS = 400_000  # longer generated code is linked (90_code.py), not inlined
MAX_BLOCKS_PER_NODE = 4   # code blocks listed for a node of an earlier stage


@dataclass
class Stage:
    """One graph text of the dump: its file (relative to the page), a title, and whether it is
    the graph the code was generated from (the last lowering stage of a forward/backward)."""
    file: str
    title: str
    text: str
    final: bool = False


@dataclass
class Block:
    title: str
    quoted: list[str]          # the IR lines the comment quotes
    lines: list[str] = field(default_factory=list)
    region: int = -1           # which host function (one per lowered graph, in order)


_HOST_DEF = re.compile(r"def graphc_\w*\(")
_PART_DEF = re.compile(r"def _graphc_\w*\(")  # a part of a large host function (codegen/parts.py)
_KERNEL = re.compile(r"# ---- kernel (\w+) ----")  # a Triton kernel's source, after its host function
_PRIM = re.compile(r"= (\w+)\(")


def code_blocks(code: str) -> tuple[list[Block], list[list[str]]]:
    """The comment blocks of generated code (``# -- title`` then ``#    IR line``s, then the
    code up to the next block, then the source of the Triton kernel it launches), and the
    memory plan comments before each host function."""
    blocks: list[Block] = []
    plans: list[list[str]] = []
    kernels: dict[str, list[str]] = {}
    plan: list[str] = []
    region = -1
    cur: Block | None = None
    kernel: list[str] | None = None  # the kernel source being read (top-level lines and all)
    for ln in code.splitlines():
        s = ln.strip()
        if not ln.startswith(" "):  # top level: a plan comment, a host function or part, a kernel
            cur = None
            m = _KERNEL.match(ln)
            if m:
                kernel = kernels.setdefault(m.group(1), [])
            elif ln.startswith("# memory plan"):
                kernel, plan = None, [ln[2:]]
            elif ln.startswith("#   ") and plan and kernel is None:
                plan.append(ln[2:])
            elif _HOST_DEF.match(ln):
                kernel = None
                region += 1
                plans.append(plan)
                plan = []
            elif _PART_DEF.match(ln):
                kernel = None
            if kernel is not None:
                kernel.append(ln)
            continue
        if kernel is not None:
            kernel.append(ln)
            continue
        if s.startswith("# -- "):
            cur = Block(s[5:], [], [ln], region)
            blocks.append(cur)
            continue
        if cur is None:
            continue
        if s.startswith("return (") and len(ln) - len(ln.lstrip()) <= 4:
            cur = None
            continue
        if s.startswith("#    ") and len(cur.lines) == len(cur.quoted) + 1:
            cur.quoted.append(s[5:])
        cur.lines.append(ln)
    for b in blocks:
        src = kernels.get(b.title.split(":")[0])
        if src:
            b.lines += [""] + [ln for ln in src if ln.strip()]
    return blocks, plans


def _bare(line: str) -> str:
    """An IR line without its source location (some kernels' comments are rebuilt without it)."""
    return line.rsplit("  # ", 1)[0]


def _final_code(g: Graph, blocks: list[Block], region: int | None) -> dict[int, list[int]]:
    """id(node) -> the blocks whose comments quote it (a fused node: its body's lines), each
    block claimed once, in the graph's order."""
    by_line: dict[str, list[int]] = {}
    for i, b in enumerate(blocks):
        if region is None or b.region == region:
            for q in b.quoted:
                by_line.setdefault(_bare(q), []).append(i)
    claimed: set[int] = set()
    found: dict[int, list[int]] = {}
    for n in g.nodes:
        if n.prim.name == "fused":
            want = {_bare(format_node(b, bodies=False)) for b in n.attrs["body"].nodes}
            cands = sorted({i for q in want for i in by_line.get(q, ())})
            ok = [i for i in cands if i not in claimed and all(_bare(q) in want for q in blocks[i].quoted)]
        else:
            ok = [i for i in by_line.get(_bare(format_node(n, bodies=False)), ()) if i not in claimed]
        if ok:
            claimed.add(ok[0])
            found[id(n)] = [ok[0]]
    return found


def _line_index(blocks: list[Block]) -> tuple[dict, dict]:
    """(primitive, file:line) -> blocks and file:line -> blocks, over the quoted IR lines."""
    by_prim: dict[tuple[str, str], list[int]] = {}
    by_loc: dict[str, list[int]] = {}
    for i, b in enumerate(blocks):
        for q in b.quoted:
            m = _PRIM.search(q)
            if m and "  # " in q:
                loc = q.rsplit("  # ", 1)[1]
                for d, k in ((by_prim, (m.group(1), loc)), (by_loc, loc)):
                    lst = d.setdefault(k, [])
                    if not lst or lst[-1] != i:
                        lst.append(i)
    return by_prim, by_loc


def _node_info(n: Node, keys: dict[int, str], code: list[int] | None, index: tuple[dict, dict] | None) -> dict:
    info = {"ir": format_node(n), "loc": n.loc,
            "ins": [keys[id(x.producer) if x.producer is not None else id(x)] for x in dict.fromkeys(n.value_inputs())
                    if id(x.producer if x.producer is not None else x) in keys],
            "users": [keys[id(u)] for u in dict.fromkeys(u for o in n.outputs for u in o.users) if id(u) in keys]}
    if n.prim.name == "fused":
        body = n.attrs["body"]
        info["body"] = graph_svg.draw(body).svg
        info["loc"] = info["loc"] or ", ".join(dict.fromkeys(b.loc for b in body.nodes if b.loc))
    if code is not None:  # a final graph: the code this node became, or why there is none
        info["code"] = code
        if not code:
            info["note"] = ("a view: no code of its own, the kernels that read it index through it"
                            if n.prim.is_view else "no code block quotes this node")
    elif index is not None:
        by_prim, by_loc = index
        hits = by_prim.get((n.prim.name, n.loc)) or by_loc.get(n.loc) or []
        info["code"] = hits[:MAX_BLOCKS_PER_NODE]
        info["note"] = ((f"the passes rename nodes; code quoting {'the same primitive at ' if (n.prim.name, n.loc) in by_prim else ''}"
                         f"the same source line ({n.loc})" + (f", first {MAX_BLOCKS_PER_NODE} of {len(hits)}"
                                                              if len(hits) > MAX_BLOCKS_PER_NODE else ""))
                        if hits else "the passes rename nodes: see the final graph (after fusion) for its code")
    return info


def _stage_data(stage: Stage, blocks: list[Block], region: int | None, index: tuple[dict, dict]) -> tuple[dict, str]:
    """(the stage's record for the page's script, its SVG)."""
    rec = {"id": Path(stage.file).stem, "title": stage.title, "file": stage.file, "nodes": {}}
    text, total = _head(stage.text, graph_svg.MAX_DRAWN)
    try:
        g = parse_graph(text)
    except Exception as e:  # the page still shows every other stage
        rec["note"] = f"this stage's text does not parse ({e}); open {stage.file}"
        return rec, ""
    d = graph_svg.draw(g)
    if d.drawn < total:
        rec["note"] = f"drawn: the first {d.drawn} of {total} nodes; the whole graph is in {stage.file}"
    final = _final_code(g, blocks, region) if stage.final else None
    for v in g.inputs:
        if id(v) in d.keys:
            rec["nodes"][d.keys[id(v)]] = {
                "ir": f"%{v.name}: {format_type(v.type)} {v.role}", "loc": "",
                "ins": [], "users": [d.keys[id(u)] for u in dict.fromkeys(v.users) if id(u) in d.keys],
                "note": f"a graph input ({v.role})"}
    for n in g.nodes[:d.drawn]:
        for o in n.outputs[1:]:  # a fused node's other outputs name it too
            rec.setdefault("alias", {})[o.name] = d.keys[id(n)]
        rec["nodes"][d.keys[id(n)]] = _node_info(n, d.keys, None if final is None else final.get(id(n), []),
                                                 None if final is not None else index)
    return rec, d.svg


def _head(text: str, limit: int) -> tuple[str, int]:
    """(the graph text cut after its first ``limit`` nodes, returning nothing; its node count):
    a huge graph is drawn in part without parsing all of it."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, ln in enumerate(lines) if ln.startswith("  %")]  # top-level nodes (bodies are deeper)
    if len(starts) <= limit:
        return text, len(starts)
    return "".join(lines[:starts[limit]]) + "  return\n}\n", len(starts)


def _json_for_script(obj) -> str:
    # inside <script> nothing may close the element or open a comment
    return json.dumps(obj).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(name: str, folder_name: str, stages: list[Stage], info: dict) -> str:
    """The page's HTML. ``info``: why (str), contents (str), code (str), fusion (lines),
    memory (lines)."""
    code = info.get("code", "")
    blocks, plans = code_blocks(code)
    finals = [s for s in stages if s.final]
    regions = finals if len(finals) == len(plans) else None  # else: match against all of the code
    index = _line_index(blocks)
    records, svgs, seen = [], [], {}
    for s in stages:
        region = finals.index(s) if (regions is not None and s.final) else None
        key = (s.text, s.final)
        if key in seen:  # a pass that changed nothing: the same drawing
            rec = {"id": Path(s.file).stem, "title": s.title, "file": s.file, "same": seen[key]}
        else:
            rec, svg = _stage_data(s, blocks, region, index)
            seen[key] = len(records)
            svgs.append(f'<div class="stage" id="stage-{len(records)}" hidden>{svg}</div>')
        records.append(rec)
    shown: dict[int, int] = {}  # only the blocks some node shows go to the page, renumbered
    for rec in records:
        for n in rec.get("nodes", {}).values():
            if "code" in n:
                n["code"] = [shown.setdefault(i, len(shown)) for i in n["code"]]
    data = {"stages": records, "blocks": [{"title": blocks[i].title, "text": "\n".join(blocks[i].lines)}
                                          for i in shown]}
    nav = "".join(f'<li><button data-s="{i}" title="{escape(r["title"])}"{" class=same" if "same" in r else ""}>'
                  f'{escape(_short_title(r["file"]))}'
                  f'{" <i>(no change)</i>" if "same" in r else ""}</button></li>' for i, r in enumerate(records))
    legend = "".join(f'<span class="sw" style="background:{f};border-color:{c}"></span>{escape(k)} '
                     for k, (f, c) in graph_svg.LEGEND) + \
        '<span class="sw" style="background:hsl(0,70%,86%);border-color:hsl(0,60%,38%)"></span>fused group (a hue each) ' \
        '<span class="sw" style="border-width:3px"></span>graph output'
    fusion = _sections(info.get("fusion", []))
    memory = "".join(f"<li>{escape(m)}</li>" for m in info.get("memory", []))
    plan_text = "\n\n".join("\n".join(p) for p in plans if p)
    code_html = (f"<pre>{escape(code)}</pre>" if len(code) <= MAX_CODE_CHARS else
                 f'<p>{len(code)} characters: open <a href="90_code.py">90_code.py</a>.</p>')
    return _PAGE.format(
        title=escape(f"graphc dump: {folder_name}"), name=escape(name), folder=escape(folder_name),
        why=escape(info.get("why", "")), contents=escape(info.get("contents", "")), nav=nav, legend=legend,
        svgs="".join(svgs), fusion=fusion or "<p>(no fusion log)</p>",
        memory=f"<ul>{memory}</ul>" + (f"<pre>{escape(plan_text)}</pre>" if plan_text else ""),
        code=code_html, data=_json_for_script(data), css=_CSS, js=_JS, errors=_ERRORS_JS)


def _short_title(file: str) -> str:
    """``09_forward_after_fusion.ir`` -> ``forward after fusion``; ``50_forward.ir`` -> ``forward
    (autodiff's split)``."""
    stem = Path(file).stem.split("_", 1)[-1]
    return stem.replace("_", " ") + (" (autodiff's split)" if stem in ("forward", "backward") else "")


def _sections(lines: list[str]) -> str:
    """The fusion log, one section per graph (its ``## graph`` headings)."""
    out, body, head = [], [], None
    for ln in lines + ["## "]:
        if ln.startswith("## "):
            if head is not None or body:
                out.append(f"<h3>{escape(head or '')}</h3><pre>{escape(chr(10).join(body))}</pre>")
            head, body = ln[3:], []
        else:
            body.append(ln)
    return "".join(out)


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and a rename: a reader (or a concurrent writer of the same
    index) never sees half a page."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:  # created new, with the umask's usual mode
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_page(base: Path, name: str, stages: list[Stage], info: dict) -> Path:
    """``base/index.html`` for one specialization, and the dump folder's index linking all."""
    page = base / "index.html"
    _write_atomic(page, render_page(name, base.name, stages, info))
    write_index(base.parent)
    return page


def write_index(folder: Path) -> Path:
    """``folder/index.html``: a link to every specialization's page found in the folder."""
    items = []
    for sub in sorted(p for p in folder.iterdir() if (p / "index.html").is_file()):
        why = sub / "00_why.txt"
        first = why.read_text(errors="replace").splitlines()[0] if why.is_file() else ""
        items.append(f'<li><a href="{escape(sub.name)}/index.html">{escape(sub.name)}</a> '
                     f'<span>{escape(first)}</span></li>')
    text = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>graphc dump</title>'
            f'<style>{_CSS}</style></head><body class="index"><h1>graphc dump</h1>'
            f'<p>One page per compiled function and specialization:</p><ul>{"".join(items)}</ul></body></html>')
    path = folder / "index.html"
    _write_atomic(path, text)
    return path


_CSS = """
body{font:14px system-ui,sans-serif;margin:0;color:#222}
body.index{margin:20px}
header{padding:8px 14px;background:#263238;color:#fff}
header h1{font-size:18px;margin:0 0 4px}header p{margin:2px 0;font-size:13px;color:#cfd8dc}
#wrap{display:flex;height:72vh;border-bottom:1px solid #ccc}
nav{width:230px;overflow:auto;border-right:1px solid #ccc;padding:6px;font-size:12px}
nav ul{list-style:none;padding:0;margin:0}nav button{width:100%;text-align:left;margin:1px 0;
padding:4px;border:1px solid #ddd;background:#fafafa;cursor:pointer;font-size:12px}
nav button.on{background:#1e88e5;color:#fff}nav button.same{color:#777}
nav button.same.on{color:#fff}
#main{flex:1;display:flex;flex-direction:column;min-width:0}
#bar{padding:4px 8px;border-bottom:1px solid #eee;font-size:12px}
#bar button{margin-right:4px}#note{color:#b71c1c;margin-left:8px}
#canvas{flex:1;overflow:auto;background:#fff}
#legend{font-size:11px;padding:2px 8px;color:#444}
.sw{display:inline-block;width:12px;height:10px;border:1px solid #888;margin:0 3px 0 8px;vertical-align:middle}
#panel{width:34%;overflow:auto;border-left:1px solid #ccc;padding:8px;font-size:12px}
#panel h3{margin:4px 0;font:bold 13px monospace;word-break:break-all}
#panel svg{max-width:100%;height:auto}
#panel a{cursor:pointer;color:#1565c0;margin-right:6px;font-family:monospace}
pre{background:#f6f8fa;padding:6px;overflow:auto;font-size:12px;white-space:pre}
svg.graph text{font:11px monospace;fill:#222;pointer-events:none}svg.graph text.t2{fill:#555}
svg.graph text.out{fill:#b71c1c;font-size:10px}
svg.graph g.n{cursor:pointer}svg.graph g.n.sel rect{stroke:#d50000;stroke-width:3}
svg.graph .edges path{fill:none;stroke:#90a4ae;stroke-width:1.2}
section{padding:4px 14px}section h2{font-size:16px;border-bottom:1px solid #ddd}
#graphc-errors{color:#b71c1c}
"""

# first thing on the page: record JS errors and console errors into the DOM, where a headless
# browser's --dump-dom (and a person) can see them
_ERRORS_JS = """
window.graphcErrors=[];
function graphcRecord(m){window.graphcErrors.push(String(m));var e=document.getElementById('graphc-errors');
if(e){e.textContent=window.graphcErrors.join('\\n');e.hidden=false;}}
window.addEventListener('error',function(ev){graphcRecord('error: '+ev.message+' at '+ev.lineno);});
window.addEventListener('unhandledrejection',function(ev){graphcRecord('rejection: '+ev.reason);});
(function(){var ce=console.error;console.error=function(){graphcRecord('console.error: '+
Array.prototype.join.call(arguments,' '));return ce.apply(console,arguments);};})();
document.addEventListener('DOMContentLoaded',function(){if(window.graphcErrors.length)graphcRecord('');});
"""

_JS = """
(function(){
var D=JSON.parse(document.getElementById('graphc-data').textContent);
var canvas=document.getElementById('canvas'),panel=document.getElementById('panel');
var cur=-1,zoom=1,selEl=null,els={};
function real(s){var r=D.stages[s];return r&&r.same!=null?r.same:s;}
function svgOf(s){var d=document.getElementById('stage-'+real(s));return d?d.querySelector('svg'):null;}
function elems(s){var k=real(s);if(!els[k]){els[k]={};var svg=svgOf(s);if(svg)svg.querySelectorAll('g.n').forEach(
function(g){els[k][g.getAttribute('data-k')]=g;});}return els[k];}
function setZoom(z){var svg=svgOf(cur);zoom=Math.max(0.05,Math.min(z,4));if(!svg)return;
svg.setAttribute('width',svg.getAttribute('data-w')*zoom);svg.setAttribute('height',svg.getAttribute('data-h')*zoom);}
function fitZoom(){var svg=svgOf(cur);return svg?Math.min(1,(canvas.clientWidth-10)/svg.getAttribute('data-w')):1;}
function fit(){setZoom(fitZoom());}
function stageIndex(id){for(var i=0;i<D.stages.length;i++)if(D.stages[i].id===id||String(i)===String(id))return i;return -1;}
function show(s){if(s<0||s>=D.stages.length)return;cur=s;var r=D.stages[s],k=real(s);
document.querySelectorAll('.stage').forEach(function(d){d.hidden=d.id!=='stage-'+k;});
document.querySelectorAll('nav button').forEach(function(b){b.classList.toggle('on',+b.getAttribute('data-s')===s);});
document.getElementById('stitle').textContent=r.title;var f=document.getElementById('sfile');f.textContent=r.file;
f.setAttribute('href',r.file);document.getElementById('note').textContent=D.stages[k].note||'';
if(selEl){selEl.classList.remove('sel');selEl=null;}setZoom(Math.max(0.6,fitZoom()));
canvas.scrollTop=0;canvas.scrollLeft=(canvas.scrollWidth-canvas.clientWidth)/2;}
function el(tag,text,cls){var e=document.createElement(tag);if(text!=null)e.textContent=text;if(cls)e.className=cls;return e;}
function links(title,keys){var p=el('p');p.appendChild(el('b',title+': '));if(!keys.length)p.appendChild(el('span','none'));
keys.forEach(function(k){var a=el('a','%'+k);a.onclick=function(){select(cur,k);};p.appendChild(a);});return p;}
function select(s,k){if(s!==cur)show(s);var r=D.stages[real(s)];if(r.alias&&r.alias[k])k=r.alias[k];
var n=r.nodes[k];panel.textContent='';
if(!n){panel.appendChild(el('p','%'+k+' is not drawn in this stage'));return false;}
if(selEl)selEl.classList.remove('sel');selEl=elems(s)[k]||null;if(selEl){selEl.classList.add('sel');
var b=selEl.getBoundingClientRect(),c=canvas.getBoundingClientRect();  // scroll the canvas only, not the page
canvas.scrollLeft+=b.left-c.left-(c.width-b.width)/2;canvas.scrollTop+=b.top-c.top-(c.height-b.height)/2;}
panel.appendChild(el('h3','%'+k));panel.appendChild(el('b','IR'));panel.appendChild(el('pre',n.ir,'ir'));
panel.appendChild(el('p','source: '+(n.loc||'(no location)'),'loc'));
if(n.body){panel.appendChild(el('b','fused body'));var b=el('div');b.innerHTML=n.body;panel.appendChild(b);}
panel.appendChild(links('operands',n.ins));panel.appendChild(links('users',n.users));
panel.appendChild(el('b','generated code'));if(n.note)panel.appendChild(el('p',n.note,'note'));
(n.code||[]).forEach(function(i){panel.appendChild(el('pre',D.blocks[i].text,'code'));});
var h='stage='+encodeURIComponent(r.id)+'&node='+encodeURIComponent(k);
if(location.hash.slice(1)!==h)history.replaceState(null,'','#'+h);return true;}
window.graphcSelect=function(stage,key){return select(stageIndex(stage),key);};
document.querySelector('nav').addEventListener('click',function(e){var b=e.target.closest('button');
if(b)show(+b.getAttribute('data-s'));});
canvas.addEventListener('click',function(e){var g=e.target.closest('g.n');if(g)select(cur,g.getAttribute('data-k'));});
canvas.addEventListener('wheel',function(e){if(!e.ctrlKey)return;e.preventDefault();setZoom(zoom*(e.deltaY<0?1.15:1/1.15));},{passive:false});
document.getElementById('zin').onclick=function(){setZoom(zoom*1.25);};
document.getElementById('zout').onclick=function(){setZoom(zoom/1.25);};
document.getElementById('zfit').onclick=fit;
function fromHash(){var q=new URLSearchParams(location.hash.slice(1)),s=q.get('stage'),k=q.get('node');
var i=s==null?-1:stageIndex(s);if(i<0)i=cur<0?D.stages.length-1:cur;if(i!==cur)show(i);if(k!=null)select(i,k.replace(/^%/,''));}
window.addEventListener('hashchange',fromHash);
var first=-1;for(var i=D.stages.length-1;i>=0;i--)if(D.stages[i].title.indexOf('fusion')>=0){first=i;break;}
if(!location.hash)show(first<0?0:first);else fromHash();
document.body.setAttribute('data-ready','1');
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<script>{errors}</script><style>{css}</style></head>
<body>
<header><h1>{folder} <small>({name})</small></h1><p>{why}</p><p>the traced graph holds: {contents}</p>
<p><a style="color:#90caf9" href="../index.html">all compiled functions</a> ·
<a style="color:#90caf9" href="#fusion">fusion decisions</a> · <a style="color:#90caf9" href="#memory">memory plan</a> ·
<a style="color:#90caf9" href="#code">generated code</a></p></header>
<pre id="graphc-errors" hidden></pre>
<div id="wrap"><nav><b>stages</b><ul>{nav}</ul></nav>
<div id="main"><div id="bar"><b id="stitle"></b> · <a id="sfile"></a>
<button id="zout">−</button><button id="zin">+</button><button id="zfit">fit</button><span id="note"></span></div>
<div id="legend">{legend}</div>
<div id="canvas">{svgs}</div></div>
<aside id="panel"><p>Click a node to see its IR line, its source line and the code it became.</p></aside></div>
<section id="fusion"><h2>Fusion decisions</h2>{fusion}</section>
<section id="memory"><h2>Memory plan</h2>{memory}</section>
<section id="code"><h2>Generated code</h2>{code}</section>
<script type="application/json" id="graphc-data">{data}</script>
<script>{js}</script>
</body></html>
"""
