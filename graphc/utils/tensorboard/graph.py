"""graphc's traced IR as a TensorBoard ``GraphDef``: one node per graph input, IR node and output,
edges from the IR's data flow. TensorBoard groups nodes by ``/`` in their names: weights are named
by their module path (``features/0/weight``), and an op sits in the module of the first weight it
reads, so a model reads as its modules with their ops inside."""
from __future__ import annotations

from tensorboard.compat.proto.attr_value_pb2 import AttrValue
from tensorboard.compat.proto.graph_pb2 import GraphDef
from tensorboard.compat.proto.node_def_pb2 import NodeDef
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.compat.proto.versions_pb2 import VersionDef

from graphc.codegen.scheduler import node_text
from graphc.ir.graph import Graph, Value, format_type

_INPUT_OPS = {"input": "Input", "param": "Parameter", "buffer": "Buffer", "const": "Constant", "rng": "RandomKey"}


def _attrs(v: Value, text: str) -> dict:
    shape = TensorShapeProto(dim=[TensorShapeProto.Dim(size=s) for s in v.shape])
    return {"_output_shapes": AttrValue(list=AttrValue.ListValue(shape=[shape])),
            "attr": AttrValue(s=text.encode("utf-8"))}


def graph_def(g: Graph, weight_names: dict[str, str]) -> GraphDef:
    """``weight_names``: IR input name -> its state_dict name (``graphc.jit.Program``'s bindings)."""
    names: dict[int, str] = {}
    nodes = []
    for v in g.inputs:
        if v.role in ("param", "buffer", "const"):
            name = weight_names.get(v.name, v.name).replace(".", "/")
        else:
            name = f"input/{v.name}"
        names[id(v)] = name
        nodes.append(NodeDef(name=name, op=_INPUT_OPS.get(v.role, v.role),
                             attr=_attrs(v, f"%{v.name}: {format_type(v.type)} {v.role}")))
    for n in g.nodes:
        op = n.attrs.get("name", n.prim.name) if n.prim.name == "composite" else n.prim.name
        scope = next((names[id(x)].rsplit("/", 1)[0] + "/" for x in n.value_inputs()
                      if x.role in ("param", "buffer") and "/" in names[id(x)]), "")
        name = f"{scope}{op}_{n.outputs[0].name}"
        for o in n.outputs:
            names[id(o)] = name
        nodes.append(NodeDef(name=name, op=op, input=[names[id(x)] for x in n.value_inputs()],
                             attr=_attrs(n.outputs[0], node_text(n))))
    for i, v in enumerate(g.outputs):
        nodes.append(NodeDef(name=f"output/output.{i}", op="IO Node", input=[names[id(v)]],
                             attr=_attrs(v, f"output {i}: %{v.name}")))
    return GraphDef(node=nodes, versions=VersionDef(producer=22))
