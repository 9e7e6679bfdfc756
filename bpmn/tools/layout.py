"""Tiny BPMN model + left-to-right fragment layout used to generate bpmn/*.bpmn.

The generated files are the source of truth for the engine and for Camunda; this generator only
exists so that the diagrams (BPMNDI) stay consistent when the processes change. Regenerate with
`python3 bpmn/tools/generate.py` from the repository root. If you edit a process in Camunda Modeler
instead, stop using the generator for that file.
"""

from xml.sax.saxutils import escape, quoteattr

SIZES = {
    "startEvent": (36, 36),
    "endEvent": (36, 36),
    "intermediateCatchEvent": (36, 36),
    "boundaryEvent": (36, 36),
    "exclusiveGateway": (50, 50),
    "parallelGateway": (50, 50),
    "serviceTask": (120, 80),
    "userTask": (120, 80),
    "callActivity": (120, 80),
}
GAP = 45


class Node:
    def __init__(self, model, kind, nid, name, parent, **kw):
        self.model = model
        self.kind = kind
        self.id = nid
        self.name = name
        self.parent = parent
        self.ext = kw.get("ext", "")
        self.attrs = kw.get("attrs", {})
        self.body = kw.get("body", "")  # event definitions
        self.doc = kw.get("doc")
        self.attached_to = kw.get("attached_to")
        self.default = None
        self.x = 0
        self.y = 0
        self.w, self.h = SIZES.get(kind, (0, 0))
        self.incoming = []
        self.outgoing = []

    @property
    def cx(self):
        return self.x + self.w / 2

    @property
    def cy(self):
        return self.y + self.h / 2

    @property
    def right(self):
        return self.x + self.w

    @property
    def bottom(self):
        return self.y + self.h


class Flow:
    def __init__(self, fid, src, tgt, name=None, cond=None, route="h"):
        self.id = fid
        self.src = src
        self.tgt = tgt
        self.name = name
        self.cond = cond
        self.route = route
        self.waypoints = []


class Frag:
    """A laid-out piece of a container: every shape it holds (all descendants) has coordinates
    relative to the fragment's top-left corner; `main_y` is the y of the main line."""

    def __init__(self, shapes, w, h, main_y, entry, exit_, exit_cond=None, exit_default=False,
                 exit_name=None):
        self.shapes = shapes
        self.w = w
        self.h = h
        self.main_y = main_y
        self.entry = entry
        self.exit = exit_
        self.exit_cond = exit_cond
        self.exit_default = exit_default
        self.exit_name = exit_name

    def shift(self, dx, dy):
        for s in self.shapes:
            s.x += dx
            s.y += dy


class Model:
    def __init__(self, process_id, name):
        self.process_id = process_id
        self.process_name = name
        self.nodes = {}
        self.order = []
        self.flows = []
        self.ids = set()

    def uid(self, base):
        nid = base
        n = 2
        while nid in self.ids:
            nid = f"{base}_{n}"
            n += 1
        self.ids.add(nid)
        return nid

    def node(self, kind, base, name, parent, **kw):
        n = Node(self, kind, self.uid(base), name, parent, **kw)
        self.nodes[n.id] = n
        self.order.append(n)
        return n

    def flow(self, src, tgt, name=None, cond=None, route="h", default=False):
        f = Flow(self.uid(f"Flow_{src.id}_to_{tgt.id}"), src, tgt, name, cond, route)
        src.outgoing.append(f)
        tgt.incoming.append(f)
        self.flows.append(f)
        if default:
            src.default = f
        return f


def single(node):
    node.x, node.y = 0, 0
    return Frag([node], node.w, node.h, node.h / 2, node, node)


def seq(model, frags, gap=GAP):
    """Places fragments left to right on one main line and links exit -> entry."""
    main_y = max(f.main_y for f in frags)
    x = 0
    shapes = []
    h = 0
    for f in frags:
        f.shift(x, main_y - f.main_y)
        shapes += f.shapes
        h = max(h, main_y - f.main_y + f.h)
        x += f.w + gap
    for a, b in zip(frags, frags[1:]):
        model.flow(a.exit, b.entry, name=a.exit_name, cond=a.exit_cond, default=a.exit_default)
    last = frags[-1]
    return Frag(shapes, x - gap, h, main_y, frags[0].entry, last.exit, last.exit_cond,
                last.exit_default, last.exit_name)


def pad(frag, top=0, bottom=0, left=0, right=0):
    frag.shift(left, top)
    frag.w += left + right
    frag.h += top + bottom
    frag.main_y += top
    return frag


def container(node, inner, label_space=30, padding=25):
    """Makes `node` (a sub-process) the box around the laid-out `inner` fragment."""
    inner.shift(padding, padding + label_space)
    node.x, node.y = 0, 0
    node.w = inner.w + 2 * padding
    node.h = inner.h + 2 * padding + label_space
    return Frag([node] + inner.shapes, node.w, node.h, inner.main_y + padding + label_space, node,
                node)


def attach(boundary, host, offset):
    """Puts a boundary event on the bottom edge of its host (call after the host is placed)."""
    boundary.x = host.x + offset
    boundary.y = host.bottom - 18


# ---------------------------------------------------------------------------------------------
# routing (after the final layout, absolute coordinates)


def _in_range(model, f, lo, hi):
    return [
        n
        for n in model.order
        if n.parent == f.src.parent and n.kind != "boundaryEvent" and n.right > lo and n.x < hi
    ]


def route(model, f):
    s, t = f.src, f.tgt
    if f.route == "h":
        sy, ty = s.cy, t.cy
        if s.kind == "subProcess" and s.y < ty < s.bottom:
            sy = ty
        if t.kind == "subProcess" and t.y < sy < t.bottom:
            ty = sy
        if abs(sy - ty) < 1:
            return [(s.right, sy), (t.x, ty)]
        if t.x > s.right:
            if s.kind.endswith("Gateway") and t.cy > s.cy:
                return [(s.cx, s.bottom), (s.cx, t.cy), (t.x, t.cy)]
            if s.kind.endswith("Gateway") and t.cy < s.cy:
                return [(s.cx, s.y), (s.cx, t.cy), (t.x, t.cy)]
            mx = (s.right + t.x) / 2
            return [(s.right, s.cy), (mx, s.cy), (mx, t.cy), (t.x, t.cy)]
        return [(s.right, s.cy), (t.x, t.cy)]
    if f.route == "down":  # from the bottom of s, down, then right into t (or straight down)
        if abs(s.cx - t.cx) < 1:
            return [(s.cx, s.bottom), (t.cx, t.y)]
        return [(s.cx, s.bottom), (s.cx, t.cy), (t.x, t.cy)]
    if f.route == "up":  # from the right of s, right, then up into the bottom of t
        return [(s.right, s.cy), (t.cx, s.cy), (t.cx, t.bottom)]
    if f.route == "down_left":  # from the bottom of s down, then left into the right of t
        return [(s.cx, s.bottom), (s.cx, t.cy), (t.right, t.cy)]
    if f.route == "left_up":  # from the left of s, left, then up into the bottom of t
        return [(s.x, s.cy), (t.cx, s.cy), (t.cx, t.bottom)]
    if f.route.startswith("below"):  # around underneath everything in between, into t's bottom
        d = int(f.route[5:] or 25)
        lo, hi = min(s.x, t.x), max(s.right, t.right)
        y = max(n.bottom for n in _in_range(model, f, lo, hi)) + d
        return [(s.cx, s.bottom), (s.cx, y), (t.cx, y), (t.cx, t.bottom)]
    if f.route.startswith("over"):  # around above everything in between, into t's top
        d = int(f.route[4:] or 25)
        lo, hi = min(s.x, t.x), max(s.right, t.right)
        y = min(n.y for n in _in_range(model, f, lo, hi)) - d
        return [(s.cx, s.y), (s.cx, y), (t.cx, y), (t.cx, t.y)]
    raise ValueError(f.route)


# ---------------------------------------------------------------------------------------------
# XML


def a(v):
    return quoteattr(str(v))


def _children(model, parent):
    return [n for n in model.order if n.parent == parent]


def _node_xml(model, n, ind):
    p = " " * ind
    attrs = f' id="{n.id}"'
    if n.name:
        attrs += f" name={a(n.name)}"
    if n.kind == "boundaryEvent":
        attrs += f' attachedToRef="{n.attached_to.id}"'
    for k, v in n.attrs.items():
        attrs += f" {k}={a(v)}"
    if n.default is not None:
        attrs += f' default="{n.default.id}"'
    out = [f"{p}<bpmn:{n.kind}{attrs}>"]
    if n.doc:
        out.append(f"{p}  <bpmn:documentation>{escape(n.doc)}</bpmn:documentation>")
    if n.ext:
        out.append(f"{p}  <bpmn:extensionElements>")
        depth = 0
        for line in (x.strip() for x in n.ext.strip().splitlines()):
            if not line:
                continue
            if line.startswith("</"):
                depth -= 1
            out.append(f"{p}    {'  ' * depth}{line}")
            if line.startswith("<") and not line.startswith("</") and not line.endswith("/>") \
                    and "</" not in line:
                depth += 1
        out.append(f"{p}  </bpmn:extensionElements>")
    for f in n.incoming:
        out.append(f"{p}  <bpmn:incoming>{f.id}</bpmn:incoming>")
    for f in n.outgoing:
        out.append(f"{p}  <bpmn:outgoing>{f.id}</bpmn:outgoing>")
    if n.kind == "subProcess":
        out += _container_xml(model, n.id, ind + 2)
    if n.body:
        for line in n.body.strip().splitlines():
            out.append(f"{p}  {line.strip()}")
    out.append(f"{p}</bpmn:{n.kind}>")
    return out


def _container_xml(model, parent, ind):
    out = []
    for n in _children(model, parent):
        out += _node_xml(model, n, ind)
    p = " " * ind
    for f in model.flows:
        if f.src.parent != parent:
            continue
        attrs = f'id="{f.id}"'
        if f.name:
            attrs += f" name={a(f.name)}"
        attrs += f' sourceRef="{f.src.id}" targetRef="{f.tgt.id}"'
        if f.cond:
            out.append(f"{p}<bpmn:sequenceFlow {attrs}>")
            out.append(
                f'{p}  <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">'
                f"{escape(f.cond)}</bpmn:conditionExpression>"
            )
            out.append(f"{p}</bpmn:sequenceFlow>")
        else:
            out.append(f"{p}<bpmn:sequenceFlow {attrs} />")
    return out


LABEL_H = 14  # one line of bpmn-js's 11 px label font


def _label_width(text):
    return max(30, min(110, 6 * len(text)))


def _label_lines(text, width):
    return max(1, -(-6 * len(text) // width))


def label_bounds(model, n):
    """Where the external label of an event or gateway goes (None: bpmn-js's default, centred
    below the shape). Keeps labels off the flows that leave a shape downwards: a boundary event's
    label sits right of its outgoing flow, a gateway's label above it when a flow uses its bottom."""
    if not n.name or not (n.kind.endswith("Event") or n.kind.endswith("Gateway")):
        return None
    w = _label_width(n.name)
    h = LABEL_H * _label_lines(n.name, w)
    if n.kind == "boundaryEvent":
        return (n.right + 2, n.bottom - 4, w, h)
    if n.kind.endswith("Gateway"):
        bottom_used = any(abs(f.waypoints[0][1] - n.bottom) < 1 for f in n.outgoing) or any(
            abs(f.waypoints[-1][1] - n.bottom) < 1 for f in n.incoming)
        top_used = any(abs(f.waypoints[0][1] - n.y) < 1 for f in n.outgoing) or any(
            abs(f.waypoints[-1][1] - n.y) < 1 for f in n.incoming)
        if bottom_used and not top_used:
            return (n.cx - w / 2, n.y - 5 - h, w, h)
        if bottom_used:  # top and bottom taken: above, left of the vertical flow
            return (n.x - w - 2 + 12, n.y - 5 - h, w, h)
    return None


def to_xml(model, root_elements, process_doc, process_ext="", origin=(160, 80)):
    for n in model.order:
        n.x += origin[0]
        n.y += origin[1]
    for f in model.flows:
        f.waypoints = route(model, f)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<!-- Generated by bpmn/tools/generate.py: edit the generator, then regenerate. -->",
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
        ' xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"'
        ' xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"'
        ' xmlns:di="http://www.omg.org/spec/DD/20100524/DI"'
        ' xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"'
        ' xmlns:modeler="http://camunda.org/schema/modeler/1.0"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        f' id="Definitions_{model.process_id.replace("-", "_")}"'
        ' targetNamespace="https://github.com/c8dr/c8dr/bpmn"'
        ' exporter="c8dr bpmn/tools/generate.py" exporterVersion="1.0"'
        ' modeler:executionPlatform="Camunda Cloud" modeler:executionPlatformVersion="8.8.0">',
    ]
    for line in root_elements:
        out.append("  " + line)
    out.append(
        f'  <bpmn:process id="{model.process_id}" name={a(model.process_name)} isExecutable="true">'
    )
    out.append(f"    <bpmn:documentation>{escape(process_doc)}</bpmn:documentation>")
    if process_ext:
        out.append("    <bpmn:extensionElements>")
        out.append("      " + process_ext.strip())
        out.append("    </bpmn:extensionElements>")
    out += _container_xml(model, model.process_id, 4)
    out.append("  </bpmn:process>")
    pid = model.process_id.replace("-", "_")
    out.append(f'  <bpmndi:BPMNDiagram id="Diagram_{pid}">')
    out.append(f'    <bpmndi:BPMNPlane id="Plane_{pid}" bpmnElement="{model.process_id}">')
    for n in model.order:
        extra = ' isExpanded="true"' if n.kind == "subProcess" else ""
        extra += ' isMarkerVisible="true"' if n.kind == "exclusiveGateway" else ""
        out.append(f'      <bpmndi:BPMNShape id="{n.id}_di" bpmnElement="{n.id}"{extra}>')
        out.append(
            f'        <dc:Bounds x="{n.x:.0f}" y="{n.y:.0f}" width="{n.w:.0f}" height="{n.h:.0f}" />'
        )
        lb = label_bounds(model, n)
        if lb:
            out.append("        <bpmndi:BPMNLabel>")
            out.append(
                f'          <dc:Bounds x="{lb[0]:.0f}" y="{lb[1]:.0f}" width="{lb[2]:.0f}" '
                f'height="{lb[3]:.0f}" />'
            )
            out.append("        </bpmndi:BPMNLabel>")
        out.append("      </bpmndi:BPMNShape>")
    for f in model.flows:
        out.append(f'      <bpmndi:BPMNEdge id="{f.id}_di" bpmnElement="{f.id}">')
        for x, y in f.waypoints:
            out.append(f'        <di:waypoint x="{x:.0f}" y="{y:.0f}" />')
        out.append("      </bpmndi:BPMNEdge>")
    out.append("    </bpmndi:BPMNPlane>")
    out.append("  </bpmndi:BPMNDiagram>")
    out.append("</bpmn:definitions>")
    return "\n".join(out) + "\n"
