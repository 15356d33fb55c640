"""BackpropStepper: walk through a recorded backward pass node by node.

    x = ...; loss = model(x).pow(2).mean()
    with record_backward() as rec:
        loss.backward()
    BackpropStepper(rec, loss, module=model)

Each step shows the node (highlighted in the graph), the gradient arriving at it, the
local rule in words and in math, and the gradients it sends to its inputs; values for
small tensors, statistics for big ones.
"""
import anywidget
import traitlets as T

from engine.autograd.graph import walk

from . import _util as U
from html import escape

from .graph import GraphModel, _jsonable, esm, render_svg

__all__ = ["BackpropStepper", "RULES", "rule_for"]

# op -> (words, math); a, b name the node's inputs in next_functions order, out its output
RULES = {
    "add": ("the gradient passes through unchanged to both inputs (summed over broadcast dims)",
            "grad_a = grad_out;  grad_b = grad_out"),
    "sub": ("passes through to a, negated to b", "grad_a = grad_out;  grad_b = -grad_out"),
    "rsub": ("negated to a, passed through to b", "grad_a = -grad_out;  grad_b = grad_out"),
    "mul": ("each input gets the incoming gradient times the other input",
            "grad_a = grad_out * b;  grad_b = grad_out * a"),
    "div": ("a gets grad/b; b gets -grad*a/b²", "grad_a = grad_out / b;  grad_b = -grad_out * a / b**2"),
    "neg": ("the gradient is negated", "grad_a = -grad_out"),
    "mm": ("matrix product: multiply by the other operand, transposed",
           "grad_a = grad_out @ b.T;  grad_b = a.T @ grad_out"),
    "matmul": ("matrix product: multiply by the other operand, transposed",
               "grad_a = grad_out @ b.mT;  grad_b = a.mT @ grad_out"),
    "bmm": ("batched matrix product: per batch, multiply by the other operand transposed",
            "grad_a = grad_out @ b.mT;  grad_b = a.mT @ grad_out"),
    "addmm": ("bias gets the gradient summed over rows; the matrices as in mm",
              "grad_bias = grad_out.sum(0);  grad_a = grad_out @ b.T;  grad_b = a.T @ grad_out"),
    "pow": ("power rule", "grad_a = grad_out * n * a**(n-1)"),
    "exp": ("the derivative of exp is exp itself", "grad_a = grad_out * exp(a)"),
    "log": ("the derivative of log a is 1/a", "grad_a = grad_out / a"),
    "sqrt": ("d sqrt(a) = 1 / (2 sqrt(a))", "grad_a = grad_out / (2 * sqrt(a))"),
    "rsqrt": ("d a^-1/2 = -1/2 a^-3/2", "grad_a = -0.5 * grad_out * a**-1.5"),
    "tanh": ("d tanh = 1 - tanh²", "grad_a = grad_out * (1 - out**2)"),
    "sigmoid": ("d σ = σ (1 - σ)", "grad_a = grad_out * out * (1 - out)"),
    "relu": ("the gradient flows only where the input was positive", "grad_a = grad_out * (a > 0)"),
    "gelu": ("the gradient is scaled by GELU's slope at the input", "grad_a = grad_out * gelu'(a)"),
    "sum": ("every summed element gets the incoming gradient (broadcast back)",
            "grad_a = grad_out.expand(a.shape)"),
    "mean": ("like sum, divided by the number of averaged elements",
             "grad_a = grad_out.expand(a.shape) / N"),
    "softmax": ("Jacobian of softmax: subtract the output-weighted mean of the gradient",
                "grad_a = out * (grad_out - (grad_out * out).sum(dim, keepdim=True))"),
    "logsoftmax": ("subtract softmax times the summed gradient",
                   "grad_a = grad_out - exp(out) * grad_out.sum(dim, keepdim=True)"),
    "logsumexp": ("the gradient is spread by softmax of the input", "grad_a = grad_out * softmax(a, dim)"),
    "nllloss": ("minus the (weighted) incoming gradient at each target index, 0 elsewhere",
                "grad_a[i, target[i]] = -grad_out / N"),
    "crossentropy": ("softmax minus the one-hot target, divided by the batch",
                     "grad_a = (softmax(a) - onehot(target)) * grad_out / N"),
    "mseloss": ("twice the error, averaged", "grad_a = 2 * (a - b) * grad_out / N"),
    "view": ("a view: the gradient is reshaped back to the input's shape", "grad_a = grad_out.view(a.shape)"),
    "reshape": ("the gradient is reshaped back to the input's shape", "grad_a = grad_out.reshape(a.shape)"),
    "unsafeview": ("the gradient is reshaped back to the input's shape", "grad_a = grad_out.reshape(a.shape)"),
    "transpose": ("the gradient is transposed back", "grad_a = grad_out.transpose(d0, d1)"),
    "t": ("the gradient is transposed back", "grad_a = grad_out.T"),
    "permute": ("the gradient is permuted by the inverse permutation", "grad_a = grad_out.permute(inverse(dims))"),
    "expand": ("summed over the expanded dimensions", "grad_a = grad_out.sum(expanded dims)"),
    "squeeze": ("the removed dimension is put back", "grad_a = grad_out.unsqueeze(dim)"),
    "unsqueeze": ("the added dimension is removed", "grad_a = grad_out.squeeze(dim)"),
    "clone": ("copies pass the gradient through", "grad_a = grad_out"),
    "split": ("each piece's gradient goes back to its slice (zeros where a piece got none)",
              "grad_a = cat(grad_out_pieces, dim)"),
    "cat": ("each input gets its slice of the gradient", "grad_a_i = grad_out.narrow(dim, offset_i, size_i)"),
    "select": ("the gradient is scattered back into zeros at the selected index", "grad_a[index] = grad_out"),
    "slice": ("the gradient is scattered back into zeros at the slice", "grad_a[slice] = grad_out"),
    "index": ("gathered rows: the gradient is scatter-added back (repeats accumulate)",
              "grad_a.index_add_(0, idx, grad_out)"),
    "embedding": ("rows used by the lookup receive the gradient (repeats accumulate)",
                  "grad_w.index_add_(0, idx, grad_out)"),
    "maskedfill": ("filled positions get no gradient", "grad_a = grad_out * ~mask"),
    "abs": ("the sign of the input scales the gradient", "grad_a = grad_out * sign(a)"),
    "leaf": ("AccumulateGrad: the gradient is added into the leaf's .grad",
             "leaf.grad += grad_out"),
    "backwardhookfunction": ("a module backward hook: identity", "grad_a = grad_out"),
    "nativelayernorm": ("layer norm: normalise the gradient the same way, then remove its mean and its "
                        "projection on the normalised input; weight and bias get sums over the batch",
                        "x̂ = (a - μ)/σ;  g = grad_out * w;  grad_a = (g - mean(g) - x̂ * mean(g * x̂)) / σ;  "
                        "grad_w = Σ grad_out * x̂;  grad_b = Σ grad_out"),
    "max": ("only the maximal element(s) receive the gradient", "grad_a = grad_out * (a == max(a)) / count"),
    "amax": ("only the maximal element(s) receive the gradient", "grad_a = grad_out * (a == amax(a)) / count"),
    "min": ("only the minimal element(s) receive the gradient", "grad_a = grad_out * (a == min(a)) / count"),
    "amin": ("only the minimal element(s) receive the gradient", "grad_a = grad_out * (a == amin(a)) / count"),
    "maximum": ("each element's gradient goes to the larger input (split on ties)",
                "grad_a = grad_out * (a > b);  grad_b = grad_out * (b > a)"),
    "clamp": ("the gradient passes where the input was inside the bounds", "grad_a = grad_out * (lo <= a <= hi)"),
    "where": ("the gradient goes to the input the condition picked", "grad_a = where(c, grad_out, 0);  "
              "grad_b = where(c, 0, grad_out)"),
    "leakyrelu": ("slope 1 for positive inputs, the negative slope elsewhere",
                  "grad_a = grad_out * where(a > 0, 1, slope)"),
    "elu": ("slope 1 for positive inputs, out + α elsewhere", "grad_a = grad_out * where(a > 0, 1, out + α)"),
    "softplus": ("the derivative of softplus is the sigmoid", "grad_a = grad_out * sigmoid(β a)"),
    "silu": ("d (a σ(a)) = σ(a) (1 + a (1 - σ(a)))", "grad_a = grad_out * σ(a) * (1 + a * (1 - σ(a)))"),
    "stack": ("each input gets its slice of the gradient", "grad_a_i = grad_out.select(dim, i)"),
    "unbind": ("the pieces' gradients are stacked back", "grad_a = stack(grad_outs, dim)"),
    "splitwithsizes": ("each piece's gradient goes back to its slice", "grad_a = cat(grad_out_pieces, dim)"),
    "gather": ("the gradient is scattered back to the gathered positions", "grad_a.scatter_add_(dim, idx, grad_out)"),
    "indexselect": ("the gradient is added back at the selected indices", "grad_a.index_add_(dim, idx, grad_out)"),
    "repeat": ("the tiles' gradients are summed", "grad_a = grad_out summed over the repeats"),
    "tocopy": ("a copy (dtype or device change): the gradient is converted back", "grad_a = grad_out.to(a)"),
    "alias": ("an alias: the gradient passes through", "grad_a = grad_out"),
    "linalgvectornorm": ("the gradient points along the input, scaled by 1/norm",
                         "grad_a = grad_out * a / ||a||   (p = 2)"),
    "var": ("d var = 2 (a - mean) / (N - correction)", "grad_a = grad_out * 2 * (a - mean(a)) / (N - c)"),
    "std": ("d std = (a - mean) / ((N - correction) std)", "grad_a = grad_out * (a - mean(a)) / ((N - c) * std)"),
    "dot": ("each vector gets the other times the incoming scalar", "grad_a = grad_out * b;  grad_b = grad_out * a"),
    "mv": ("matrix-vector product", "grad_A = outer(grad_out, v);  grad_v = A.T @ grad_out"),
    "baddbmm": ("batched matmul plus input, as addmm per batch",
                "grad_in = β grad_out;  grad_a = α grad_out @ b.mT;  grad_b = α a.mT @ grad_out"),
    "convolution": ("the input gets the transposed convolution of the gradient; the weight the correlation "
                    "of input and gradient; the bias the gradient summed",
                    "grad_x = conv_transpose(grad_out, w);  grad_w = conv(x, grad_out);  grad_b = Σ grad_out"),
    "maxpool2dwithindices": ("each window's gradient goes to its max element", "grad_a[argmax] += grad_out"),
    "avgpool2d": ("each window's gradient is spread evenly over the window", "grad_a[window] += grad_out / k²"),
    "constantpadnd": ("the padding gets no gradient: the gradient is cropped", "grad_a = grad_out[unpadded]"),
    "binarycrossentropy": ("d BCE/dp = (p - y) / (p (1 - p)), averaged",
                           "grad_p = grad_out * (p - y) / (p (1 - p)) / N"),
    "binarycrossentropywithlogits": ("sigmoid of the logits minus the target, averaged",
                                     "grad_x = grad_out * (σ(x) - y) / N"),
    "cumsum": ("reverse cumulative sum of the gradient", "grad_a = grad_out.flip(d).cumsum(d).flip(d)"),
    "flip": ("flipped back", "grad_a = grad_out.flip(dims)"),
    "roll": ("rolled back", "grad_a = grad_out.roll(-shifts, dims)"),
    "tril": ("the zeroed part gets no gradient", "grad_a = grad_out.tril(k)"),
    "triu": ("the zeroed part gets no gradient", "grad_a = grad_out.triu(k)"),
    "sin": ("d sin = cos", "grad_a = grad_out * cos(a)"),
    "cos": ("d cos = -sin", "grad_a = -grad_out * sin(a)"),
    "reciprocal": ("d 1/a = -1/a²", "grad_a = -grad_out / a**2"),
}


def rule_for(op, name=""):
    """(words, math) of a node's local backward rule."""
    r = RULES.get(op)
    if r is None and op.endswith("mean"):
        r = RULES["mean"]
    if r is None:
        r = (f"{name}: the op's local derivative (vector-Jacobian product)", "grad_a = J(a)ᵀ · grad_out")
    return r


def _grad_info(g):
    if g is None:
        return None
    return _jsonable(U.summary(g, detail=True))


class BackpropStepper(anywidget.AnyWidget):
    """BackpropStepper(recording, graph=None, module=None, depth=None, interval=0.6, height=460, names=None)

    recording  the list that `engine.autograd.graph.record_backward()` yields
    graph      the tensor the backward started from, a GraphModel, or a graph_data() dict
               to draw; default: the graph walked from the first recorded node
    names      {name: tensor} for inputs that are not parameters (as GraphView's)
    depth      fold modules deeper than this (None: every op shown); a step inside a
               folded module highlights the module's node
    Python API: .step(), .back(), .goto(i), .current (dict), len(stepper), .index, .order."""
    _esm = esm("stepper")
    graph = T.Dict().tag(sync=True)
    steps = T.List().tag(sync=True)
    index = T.Int(0).tag(sync=True)
    interval = T.Float(0.6).tag(sync=True)
    height = T.Int(460).tag(sync=True)

    def __init__(self, recording, graph=None, module=None, depth=None, interval=0.6, height=460, names=None):
        recording = list(recording)
        drawing = graph if isinstance(graph, dict) else None
        if isinstance(graph, GraphModel):
            gm = graph
        else:
            root = graph if graph is not None and drawing is None else (recording[0].node if recording else None)
            if root is None:
                raise ValueError("BackpropStepper needs a non-empty recording or a graph")
            gm = GraphModel(root, module=module, names=names, saved=False, grads=True)
        gm.refresh(recording)
        if drawing is None:
            drawing = gm.layout(depth=depth)
        shown = {n["id"] for n in drawing["nodes"]}

        def visible(j):
            if f"n{j}" in shown:
                return f"n{j}"
            return next((f"g:{p}" for p in gm.paths[j] if f"g:{p}" in shown), "")
        steps = []
        for i, ev in enumerate(recording):
            j = gm.by_node.get(ev.node)
            if j is None:  # a node outside the graph given (another backward): walk it on its own
                info = walk(ev.node)[0]
                label, ins, node_id, op = info.name, [], "", info.op
            else:
                info = gm.infos[j]
                label, ins, node_id, op = gm.labels[j], [gm.labels[k] for k in info.inputs], visible(j), info.op
            words, math_ = rule_for(op, info.name)
            gin = [g for (nx, _), g in zip(ev.node.next_functions, ev.grad_inputs) if nx is not None]
            outs = [{"to": ins[k] if k < len(ins) else f"input {k}", "grad": _grad_info(g)} for k, g in enumerate(gin)]
            if ev.is_leaf:
                outs = [{"to": f"{label}.grad", "grad": _grad_info(ev.tensor.grad)}]
            steps.append({"i": i, "node": node_id, "name": ev.name, "op": op, "label": label,
                          "module": gm.paths[j][-1] if j is not None and gm.paths[j] else "",
                          "inputs": ins, "rule": words, "math": math_,
                          "grad_out": [_grad_info(g) for g in ev.grad_outputs], "grad_in": outs})
        super().__init__(interval=interval, height=height)
        self.model = gm
        self.recording = recording
        self.graph = drawing
        self.steps = steps

    def __len__(self):
        return len(self.steps)

    @property
    def current(self):
        return self.steps[self.index] if self.steps else {}

    def goto(self, i):
        """Go to step i (negative counts from the end, as for lists); returns .current."""
        i = int(i)
        return self._set(i if i >= 0 else len(self.steps) + i)

    def _set(self, i):
        if self.steps:
            self.index = max(0, min(i, len(self.steps) - 1))
        return self.current

    def step(self):
        return self._set(self.index + 1)

    def back(self):
        return self._set(self.index - 1)

    @property
    def order(self):
        """Node names in execution order."""
        return [s["name"] for s in self.steps]

    def __repr__(self):
        cur = self.current
        return f"BackpropStepper(steps={len(self.steps)}, index={self.index}, node={cur.get('name', '-')!r})"

    def __str__(self):
        return self.text()

    static_fallback = True

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        meta = None
        if isinstance(data, tuple):
            data, meta = data
        data = dict(data or {})
        data["text/plain"] = repr(self)
        if self.static_fallback and self.steps and len(self.graph["nodes"]) <= 1500:
            data["text/html"] = (f'<div class="clgrad-static"><pre>{escape(self.text())}</pre>'
                                 f"{render_svg(self.graph)}</div>")
        return (data, meta) if meta is not None else data

    def text(self, i=None):
        """The step as plain text (what the panel shows)."""
        s = self.steps[self.index if i is None else i]
        lines = [f"step {s['i'] + 1}/{len(self.steps)}: {s['name']} ({s['label']})",
                 f"rule: {s['rule']}", f"      {s['math']}"]
        for g in s["grad_out"]:
            lines.append(f"in : grad_out {U.fmt_shape(g['shape']) if g else ''} {U.describe(g)}")
        for o in s["grad_in"]:
            g = o["grad"]
            lines.append(f"out: -> {o['to']} {U.fmt_shape(g['shape']) if g else ''} {U.describe(g)}")
        return "\n".join(lines)
