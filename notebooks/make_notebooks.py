"""Generate the tutorial notebooks (without outputs) from the cell lists below.

    .venv/bin/python notebooks/make_notebooks.py            # write every notebook
    .venv/bin/python notebooks/make_notebooks.py 04 06      # only these
    make notebooks                                          # write + execute + store outputs

Edit the text here, not in the .ipynb files: `make notebooks` regenerates and re-executes
them (outputs stored, widget state not), and `make test` checks the stored outputs with
strict nbval.  Conventions:
  * every notebook seeds with engine.manual_seed, so printed numbers are reproducible;
  * a cell whose output is legitimately not reproducible (timings, device tables with driver
    versions, kernel profiles) starts with `# NBVAL_IGNORE_OUTPUT`;
  * size parameters sit in the notebook's first code cell, sized for < 60 s on 2 CPU cores.
"""
import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent
NOTEBOOKS = {}


def notebook(stem):
    def deco(fn):
        NOTEBOOKS[stem] = fn
        return fn
    return deco


def md(text):
    return nbf.v4.new_markdown_cell(text.strip("\n"))


def code(text):
    return nbf.v4.new_code_cell(text.strip("\n"))


SETUP = """\
%load_ext kernel_ext
import engine
from engine import nn
import engine.nn.functional as F
"""


# ------------------------------------------------------------------------------------------------
@notebook("01_tensors_and_devices")
def nb01():
    return [
        md("""
# 1 · Tensors and devices

clgrad is a PyTorch-style tensor library whose every operation runs as an **OpenCL kernel**.
The same code runs on NVIDIA, AMD, Intel and Apple GPUs, and on any CPU through PoCL (the
portable OpenCL implementation that ships with clgrad).

In this notebook you will learn:

1. what devices clgrad can see, and how to pick one;
2. how to create tensors and what their *shape*, *dtype* and *device* mean;
3. how **views** share memory with the tensor they came from (and what *strides* are);
4. how **broadcasting** lines up tensors of different shapes;
5. how to move data between clgrad, NumPy and devices.

The package is called `engine`. Its names follow PyTorch, so `import engine as torch` lets most
PyTorch tutorial code run unchanged. Here we keep the name `engine` so it is always clear what runs.
"""),
        code(SETUP + """
_ = engine.manual_seed(0)  # every random number below is reproducible
"""),
        md("""
## Devices

`%cl_devices` (a magic from `%load_ext kernel_ext`) lists every OpenCL device on this machine.
The `*` marks the **default device**, where new tensors go. On a machine without a GPU driver this
is the CPU, through PoCL. The table also shows how many compute units the device has, its memory,
and whether it supports 64-bit floats (`fp64`).
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
# (the device table names this machine's hardware and driver versions)
%cl_devices
"""),
        md("""
`%cl_device` shows the default device, or picks another one: `%cl_device gpu`, `%cl_device cpu`,
`%cl_device cl:1`, or part of a vendor name such as `%cl_device nvidia`. The same in Python is
`engine.set_default_device(...)`, and the environment variable `CLGRAD_DEVICE` sets it before start-up.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
# (names this machine's device)
%cl_device
"""),
        code("""
dev = engine.get_default_device()
print("default device:", dev)
print("how many devices:", len(engine.devices()))
"""),
        md("""
## Creating tensors

A tensor is an n-dimensional array of numbers of one **dtype** that lives on one **device**. You can
make one from Python lists, or with a factory function. With `%load_ext kernel_ext`, a tensor at the end
of a cell is shown with its statistics and a small picture (a heatmap for 2-D tensors, a histogram
otherwise); `print(t)` gives the plain PyTorch-style text.
"""),
        code("""
a = engine.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
print(a)
print("shape:", a.shape, " dtype:", a.dtype, " device:", a.device, " elements:", a.numel())
"""),
        code("""
print(engine.zeros(2, 3))
print(engine.ones(2, 2, dtype=engine.int64))
print(engine.arange(0, 10, 2))
print(engine.linspace(0, 1, 5))
print(engine.eye(3))
"""),
        md("""
Random tensors come from a seeded generator: `engine.manual_seed(0)` makes the sequence repeat, which
is why the numbers in these notebooks are the same every time they run.
"""),
        code("""
engine.manual_seed(0)
r = engine.randn(16, 16)     # standard normal
r                            # the rich display: shape, dtype, device, stats and a heatmap
"""),
        code("""
engine.manual_seed(0)
print(engine.equal(r, engine.randn(16, 16)), "- the same seed gives the same numbers")
print("mean %.4f  std %.4f" % (r.mean().item(), r.std().item()))
"""),
        md("""
## Arithmetic and reductions

Operators work elementwise; `@` is matrix multiplication; reductions such as `sum`, `mean` and `max`
take a `dim` to reduce along (and `keepdim=True` to keep it as size 1).
"""),
        code("""
b = engine.tensor([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
print(a + b)
print(a * 2 - 1)
print(a @ b.T)                    # (2, 3) @ (3, 2) -> (2, 2)
print(a.sum(), a.sum(dim=0), a.mean(dim=1, keepdim=True).shape)
print(a.max(dim=1))               # values and indices
"""),
        md("""
## Views: one piece of memory, many shapes

A tensor is a block of memory (its *storage*) plus a recipe for reading it: a **shape**, **strides**
(how many elements to skip to move one step along each dimension) and an **offset**. Operations such as
`view`, `transpose`, `t()` and slicing only change that recipe, so they are instant and *share memory*
with the original.
"""),
        code("""
x = engine.arange(12.0)
v = x.view(3, 4)
print(v)
print("shape", v.shape, "strides", v.stride())
t = v.t()
print("transposed shape", t.shape, "strides", t.stride(), "contiguous?", t.is_contiguous())
"""),
        md("""
Because a view shares memory, writing through it changes the original. Below, row 1 of `v` is a view
into `x`, so filling it changes `x` too:
"""),
        code("""
row = v[1]            # a view: no copy
row.fill_(-1.0)
print(x)
"""),
        md("""
A transposed tensor is not *contiguous*: its elements are not in row-major order in memory. `view` needs
contiguous memory, so it refuses; `reshape` copies when it must, and `contiguous()` makes the copy
explicitly. The error message says what to do:
"""),
        code("""
try:
    t.view(12)
except RuntimeError as e:
    print("RuntimeError:", str(e).splitlines()[0])
print(t.reshape(12))
print(t.contiguous().stride())
"""),
        md("""
## Broadcasting

When two tensors of different shapes meet in an elementwise operation, their shapes are lined up **from
the right**. Each pair of sizes must be equal, or one of them must be 1 (which is stretched, without
copying). Missing leading dimensions count as 1.

```
col  (3, 1)        grid (3, 4)
row     (4)   ->   grid (3, 4)
```
"""),
        code("""
col = engine.tensor([[0.0], [10.0], [20.0]])   # (3, 1)
row = engine.tensor([1.0, 2.0, 3.0, 4.0])      # (4,)
grid = col + row
print(grid)
print(engine.broadcast_shapes((3, 1), (4,)), engine.broadcast_shapes((2, 1, 5), (3, 1)))
"""),
        md("""
A classic use: normalise every column of a data matrix with its own mean and standard deviation, with no
loop. `mean(dim=0)` has shape `(5,)`, which broadcasts against `(100, 5)`.
"""),
        code("""
engine.manual_seed(1)
data = engine.randn(100, 5) * engine.tensor([1.0, 2.0, 3.0, 4.0, 5.0]) + 7
z = (data - data.mean(dim=0)) / data.std(dim=0)
print("column means after:", [round(m, 4) + 0.0 for m in z.mean(dim=0).tolist()])  # + 0.0 turns -0.0 into 0.0
print("column stds after: ", z.std(dim=0))
"""),
        md("""
Shapes that do not line up raise an error that names both shapes:
"""),
        code("""
try:
    engine.ones(3, 2) + engine.ones(3)
except RuntimeError as e:
    print("RuntimeError:", str(e).splitlines()[0])
"""),
        md("""
## Moving data: NumPy, Python numbers and devices

* `t.numpy()` copies a tensor to the host as a NumPy array, and `engine.from_numpy(arr)` /
  `engine.tensor(arr)` go the other way.
* `t.item()` reads a one-element tensor as a Python number. Kernels run **asynchronously**: a call like
  `a @ b` only queues work on the device, and `.item()` / `.numpy()` wait for it.
  `engine.synchronize()` waits explicitly (you need it when timing code; see notebook 7).
* `t.to(device)` copies to another device (it returns `t` itself when it is already there), and
  `t.to(dtype)` converts. PyTorch's names work: `"cpu"` is the CPU OpenCL device and `"cuda"` the default
  GPU, so `.to("cuda")` in tutorial code runs unchanged when you have one.
"""),
        code("""
import numpy as np

arr = np.arange(6, dtype=np.float32).reshape(2, 3)
t = engine.from_numpy(arr)
print(type(t).__name__, t.shape, t.dtype)
back = (t * 10).numpy()
print(type(back).__name__, back.tolist())
print("a scalar:", t.sum().item())
"""),
        code("""
cpu = t.to("cpu")                  # the CPU OpenCL device
print(cpu.device, cpu.to(engine.float64).dtype, cpu.long().dtype)
print("GPU available:", engine.cuda.is_available())
if engine.cuda.is_available():
    print((t.to("cuda") * 2).device)
"""),
        md("""
## Summary

* `%cl_devices` / `%cl_device` (or `engine.devices()` / `engine.set_default_device`) show and pick the device.
* A tensor = storage + shape + strides + offset; views share storage, `reshape`/`contiguous` copy when needed.
* Broadcasting lines shapes up from the right; sizes must match or be 1.
* `.numpy()`, `.item()`, `.to(...)` move data; kernels run asynchronously until you read a result.

Next: **notebook 2** computes gradients, by hand and with autograd, and draws the graph autograd builds.
"""),
    ]


# ------------------------------------------------------------------------------------------------
@notebook("02_autograd_and_graphs")
def nb02():
    return [
        md("""
# 2 · Autograd and graphs

Training a network means following the **gradient** of a loss with respect to every parameter. Working
those derivatives out by hand is error-prone; **autograd** does it for you: while you compute, clgrad
records a graph of the operations, and `loss.backward()` walks that graph backwards applying the chain rule.

In this notebook:

1. a gradient by hand, then the same with autograd;
2. a vector example, checked against a hand-derived formula;
3. `%%graph`: see the graph autograd recorded;
4. hooks: look at (and change) gradients as they flow;
5. a custom `Function` with your own backward, checked with `gradcheck`;
6. a first look at `%%backprop`, which replays the backward pass one node at a time.
"""),
        code(SETUP + """
_ = engine.manual_seed(0)  # reproducible random numbers
"""),
        md("""
## 1. A derivative by hand

Take $f(a, b, c) = (a \\cdot b + c)^2$ at $a = 2, b = -3, c = 10$. With $u = ab + c$ the chain rule gives

$$\\frac{\\partial f}{\\partial a} = 2u \\cdot b, \\qquad \\frac{\\partial f}{\\partial b} = 2u \\cdot a,
\\qquad \\frac{\\partial f}{\\partial c} = 2u.$$
"""),
        code("""
a_, b_, c_ = 2.0, -3.0, 10.0
u_ = a_ * b_ + c_
print("f  =", u_ ** 2)
print("by hand: df/da =", 2 * u_ * b_, " df/db =", 2 * u_ * a_, " df/dc =", 2 * u_)
"""),
        md("""
Now with autograd. `requires_grad=True` tells clgrad to record what happens to a tensor. Every result then
carries a `grad_fn`: the graph node that knows how to send gradients back to its inputs. `backward()` fills
`.grad` of every leaf that requires grad.
"""),
        code("""
a = engine.tensor(2.0, requires_grad=True)
b = engine.tensor(-3.0, requires_grad=True)
c = engine.tensor(10.0, requires_grad=True)
u = a * b + c
f = u ** 2
print("f =", f.item(), " grad_fn:", f.grad_fn.name())
f.backward()
print("autograd: df/da =", a.grad.item(), " df/db =", b.grad.item(), " df/dc =", c.grad.item())
"""),
        md("""
The same numbers. Notice two things:

* gradients **accumulate**: calling `backward()` again would *add* to `.grad`. Training loops therefore call
  `optimizer.zero_grad()` (or set `.grad = None`) before each backward;
* the graph is freed after `backward()` (pass `retain_graph=True` to walk it twice).

## 2. A vector example, checked against the formula

A single layer: $y = \\tanh(xW + b)$ and a loss $L = \\operatorname{mean}(y^2)$, for a batch $x$ of shape
$(8, 3)$. The chain rule, written with matrices (with $N$ the number of elements of $y$):

$$\\frac{\\partial L}{\\partial y} = \\frac{2y}{N}, \\quad
\\frac{\\partial L}{\\partial z} = \\frac{\\partial L}{\\partial y}\\,(1 - y^2), \\quad
\\frac{\\partial L}{\\partial W} = x^\\top \\frac{\\partial L}{\\partial z}, \\quad
\\frac{\\partial L}{\\partial b} = \\textstyle\\sum_{\\text{rows}} \\frac{\\partial L}{\\partial z}.$$
"""),
        code("""
engine.manual_seed(0)
x = engine.randn(8, 3)
W = engine.randn(3, 2, requires_grad=True)
bias = engine.zeros(2, requires_grad=True)

y = engine.tanh(x @ W + bias)
loss = (y ** 2).mean()
loss.backward()

# the same gradients by hand (no autograd involved: everything under no_grad)
with engine.no_grad():
    dy = 2 * y / y.numel()
    dz = dy * (1 - y ** 2)
    dW = x.T @ dz
    db = dz.sum(dim=0)
print("loss:", round(loss.item(), 6))
print("dL/dW matches:", engine.allclose(W.grad, dW, atol=1e-6), " dL/db matches:", engine.allclose(bias.grad, db, atol=1e-6))
print(W.grad)
"""),
        md("""
## 3. The graph: `%%graph`

`%%graph` runs a cell and draws the autograd graph behind its result (its last expression, or `NAME` when the
cell ends with `NAME = ...`). Read it from the bottom up in the order it was computed, and from the top
(the loss) down in the order backward runs:

* **blue boxes** are operations (`MmBackward0` is the matrix multiply, `TanhBackward0` the tanh...);
* **leaves** are your tensors: inputs and parameters, named after your variables;
* edges carry the values forward and the gradients backward.

Hover a node for its shape and statistics, click it for the detail panel (histogram and heatmap of its value).
After a backward pass the nodes are coloured by gradient size; `--grads` shows the leaves' gradients.
"""),
        code("""
%%graph
engine.manual_seed(0)
x = engine.randn(8, 3)
W = engine.randn(3, 2, requires_grad=True)
bias = engine.zeros(2, requires_grad=True)
loss = (engine.tanh(x @ W + bias) ** 2).mean()
"""),
        md("""
The same widget from Python is `widgets.GraphView`. Its `nodes` and `edges` are plain dicts, so you can
check what the drawing contains, and `to_svg()` exports it. `x` does not require grad, so autograd does not
need it: it is not part of the graph.
"""),
        code("""
from widgets import GraphView

gv = GraphView(loss, names={"W": W, "bias": bias}, title="loss = mean(tanh(x @ W + b)^2)")
print(len(gv.nodes), "nodes,", len(gv.edges), "edges")
print([n["label"] for n in gv.nodes])
gv
"""),
        md("""
`backward()` from the view records the gradients and recolours the drawing (warmer = larger gradient):
"""),
        code("""
events = gv.backward()
print("backward ran", len(events), "nodes:", [e.name for e in events])
"""),
        md("""
Under the hood the graph is just objects you can walk: each `grad_fn` has `next_functions`, the nodes that
feed it. Leaves appear as `AccumulateGrad` (the node that writes `.grad`).
"""),
        code("""
def show(fn, depth=0):
    if fn is None:
        return
    print("  " * depth + fn.name())
    for nxt, _ in fn.next_functions:
        show(nxt, depth + 1)

engine.manual_seed(0)
loss = (engine.tanh(x @ W + bias) ** 2).mean()
show(loss.grad_fn)
"""),
        md("""
## 4. Hooks: watching gradients flow

Intermediate results do not keep their gradient (that would waste memory). Two ways to see them:

* `t.retain_grad()` keeps `t.grad` after backward;
* `t.register_hook(fn)` calls `fn(grad)` when the gradient reaches `t`. If `fn` returns a tensor, that
  replaces the gradient: a hook can clip, scale or zero gradients. It returns a handle; `handle.remove()`
  takes it off.
"""),
        code("""
W.grad = None
bias.grad = None
z = x @ W + bias
z.retain_grad()
seen = {}

def spy(g):
    seen["dL/dz norm"] = round(g.norm().item(), 6)

handle = z.register_hook(spy)
loss = (engine.tanh(z) ** 2).mean()
loss.backward()
print(seen, " z.grad shape:", tuple(z.grad.shape))
handle.remove()
"""),
        md("""
A hook that **changes** the gradient: here we clamp the gradient reaching `z` to ±0.01. Everything upstream
(`W.grad`, `bias.grad`) is then computed from the clamped values.
"""),
        code("""
W.grad = None
z = x @ W + bias
z.register_hook(lambda g: g.clamp(-0.01, 0.01))
(engine.tanh(z) ** 2).mean().backward()
print("bias.grad with clamped dL/dz:", bias.grad)
"""),
        md("""
## 5. A custom `Function`

When you want an operation autograd does not know, or a cheaper backward than the one autograd would
build, subclass `engine.autograd.Function` with two static methods:

* `forward(ctx, *inputs)` computes the output and saves what backward needs with `ctx.save_for_backward`;
* `backward(ctx, grad_output)` returns one gradient per input, by the chain rule.

Here is the *swish* activation $s(x) = x\\,\\sigma(x)$, whose derivative is
$s'(x) = \\sigma(x)\\,(1 + x\\,(1 - \\sigma(x)))$.
"""),
        code("""
class Swish(engine.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        s = engine.sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad_out):
        x, s = ctx.saved_tensors
        # d/dx [x * sigmoid(x)] = s * (1 + x * (1 - s))
        return grad_out * s * (1 + x * (1 - s))


xs = engine.linspace(-3, 3, 7, requires_grad=True)
Swish.apply(xs).sum().backward()
print("our backward:     ", xs.grad)
xs2 = xs.detach().requires_grad_()
(xs2 * engine.sigmoid(xs2)).sum().backward()
print("autograd's version:", xs2.grad)
"""),
        md("""
`gradcheck` compares a backward with **finite differences** ($\\frac{f(x+\\epsilon) - f(x-\\epsilon)}{2\\epsilon}$)
on float64 inputs. It is the standard test for a hand-written backward:
"""),
        code("""
from engine.autograd import gradcheck

x64 = engine.randn(5, dtype=engine.float64, requires_grad=True)
print("gradcheck passed:", gradcheck(Swish.apply, (x64,)))
"""),
        md("""
`no_grad()` turns recording off (for evaluation and parameter updates), and `detach()` gives a tensor that
shares the data but has no history:
"""),
        code("""
with engine.no_grad():
    y = x @ W
print("under no_grad: requires_grad =", y.requires_grad, ", grad_fn =", y.grad_fn)
print("detached:", (x @ W).detach().grad_fn)
"""),
        md("""
## 6. A first look at `%%backprop`

`%%backprop` runs the cell, calls `backward()` on its final scalar while **recording each node the backward
pass visits**, and opens a stepper: press **step ▶** to move through the backward pass. The highlighted node
is the one running; the panel shows the gradient arriving, the local rule (the derivative of that one
operation) and the gradients it sends to its inputs. Notebook 3 builds on this.
"""),
        code("""
%%backprop
W.grad = bias.grad = None
loss = (engine.tanh(x @ W + bias) ** 2).mean()
"""),
        md("""
## Summary

* `requires_grad=True` records operations; `backward()` applies the chain rule from the loss back to every leaf.
* `%%graph` / `GraphView` draw the recorded graph; `%%backprop` replays the backward pass step by step.
* Hooks see and can change gradients; `retain_grad()` keeps an intermediate's gradient.
* A custom `Function` supplies its own backward; `gradcheck` verifies it.

Next: **notebook 3** does the whole backward pass of a small network by hand, and compares every step.
"""),
    ]


# ------------------------------------------------------------------------------------------------
@notebook("03_backprop_step_by_step")
def nb03():
    return [
        md("""
# 3 · Backprop step by step

Backpropagation is the chain rule applied in a careful order: from the loss back to the inputs, each
operation turns the gradient of its output into gradients of its inputs, using only its **local rule**.
In this notebook we do it by hand for

1. one neuron, with plain Python numbers;
2. the same neuron with clgrad, watching each step with `%%backprop`;
3. a two-layer MLP written with matrices, where the rules become matrix products;

and compare every number with autograd.
"""),
        code(SETUP + """
_ = engine.manual_seed(0)  # reproducible random numbers
"""),
        md("""
## 1. One neuron, by hand

A neuron with two inputs computes $o = \\tanh(x_1 w_1 + x_2 w_2 + b)$. We name every intermediate value so
each one gets its own gradient:

| step | forward | local rule (backward) |
|---|---|---|
| 1 | $p_1 = x_1 w_1$ | $\\partial p_1/\\partial w_1 = x_1$, $\\partial p_1/\\partial x_1 = w_1$ |
| 2 | $p_2 = x_2 w_2$ | $\\partial p_2/\\partial w_2 = x_2$, $\\partial p_2/\\partial x_2 = w_2$ |
| 3 | $s = p_1 + p_2$ | $\\partial s/\\partial p_1 = \\partial s/\\partial p_2 = 1$ |
| 4 | $n = s + b$ | $\\partial n/\\partial s = \\partial n/\\partial b = 1$ |
| 5 | $o = \\tanh n$ | $\\partial o/\\partial n = 1 - o^2$ |

Backward starts with $\\partial o/\\partial o = 1$ and multiplies by each local rule on the way back.
"""),
        code("""
import math

x1, x2 = 2.0, 0.0
w1, w2 = -3.0, 1.0
b = 6.8813735870195432
# forward
p1 = x1 * w1
p2 = x2 * w2
s = p1 + p2
n = s + b
o = math.tanh(n)
# backward, one local rule at a time
do = 1.0
dn = do * (1 - o ** 2)       # tanh
ds, db = dn * 1.0, dn * 1.0  # + sends the gradient unchanged to both inputs
dp1, dp2 = ds, ds
dw1, dx1 = dp1 * x1, dp1 * w1  # * sends each input the *other* input times the gradient
dw2, dx2 = dp2 * x2, dp2 * w2
print(f"o = {o:.4f}")
print(f"by hand: dw1={dw1:.4f} dw2={dw2:.4f} db={db:.4f} dx1={dx1:.4f} dx2={dx2:.4f}")
"""),
        md("""
Notice the pattern: `+` *distributes* the gradient unchanged, `*` *swaps* its inputs, and `tanh` scales by
$1 - o^2$ (here $o \\approx 0.707$, so by $0.5$). `dw2` is 0 because $x_2 = 0$: a weight on a zero input
gets no gradient.

## 2. The same neuron with clgrad, one step at a time

Now the same computation on tensors. `%%backprop` records the backward pass and opens the stepper: press
**step ▶** (or drag the slider) and compare each step with the table above.
"""),
        code("""
%%backprop
x1 = engine.tensor(2.0, requires_grad=True)
x2 = engine.tensor(0.0, requires_grad=True)
w1 = engine.tensor(-3.0, requires_grad=True)
w2 = engine.tensor(1.0, requires_grad=True)
b = engine.tensor(6.8813735870195432, requires_grad=True)
o = engine.tanh(x1 * w1 + x2 * w2 + b)
"""),
        code("""
print(f"autograd: dw1={w1.grad.item():.4f} dw2={w2.grad.item():.4f} db={b.grad.item():.4f} "
      f"dx1={x1.grad.item():.4f} dx2={x2.grad.item():.4f}")
"""),
        md("""
The stepper is also a Python object. Build one yourself from a recording (`record_backward()` collects
every node the backward engine runs) to read the steps as text: for each node, the gradient that arrived,
the rule, and what it sent on. The order is the backward engine's: a node runs once every gradient for it
has arrived, and `AccumulateGrad` is the step that writes a leaf's `.grad`.
"""),
        code("""
from engine.autograd.graph import record_backward
from widgets import BackpropStepper, GraphModel

leaves = {"x1": x1, "x2": x2, "w1": w1, "w2": w2, "b": b}
for t in leaves.values():
    t.grad = None
o = engine.tanh(x1 * w1 + x2 * w2 + b)
with record_backward() as rec:
    o.backward()
stepper = BackpropStepper(rec, graph=GraphModel(o, names=leaves))   # names label the leaves
print(len(stepper), "steps:", stepper.order)
"""),
        code("""
print(stepper.text(0))   # the first step: the tanh
print()
stepper.goto(1)
print(stepper.text())    # the addition of b
print()
print(stepper.text(4))   # a multiplication, x2 * w2: w2 gets 0 because x2 is 0
"""),
        code("""
stepper.goto(-1)         # the last step
stepper                  # in Jupyter: the interactive stepper, starting here
"""),
        md("""
## 3. A two-layer MLP, by hand with matrices

Now a batch of $B$ inputs $X$ (shape $B\\times D$), a hidden layer of $H$ tanh units and $C$ output scores,
trained with the **cross-entropy** loss:

$$H_{pre} = X W_1 + b_1,\\quad H = \\tanh(H_{pre}),\\quad Z = H W_2 + b_2,\\quad
L = -\\frac{1}{B}\\sum_i \\log \\operatorname{softmax}(Z_i)_{y_i}.$$

The backward rules are the scalar ones, written for matrices:

* softmax + cross-entropy together: $\\partial L/\\partial Z = (\\operatorname{softmax}(Z) - \\operatorname{onehot}(y)) / B$;
* $Z = H W_2 + b_2$: $\\partial L/\\partial W_2 = H^\\top\\,\\partial Z$, $\\partial L/\\partial b_2 = \\sum_{rows}\\partial Z$,
  $\\partial L/\\partial H = \\partial Z\\,W_2^\\top$ (the matrix form of "multiply by the other input");
* tanh: $\\partial H_{pre} = \\partial H \\odot (1 - H^2)$; then the same for $W_1, b_1$.

Sizes are parameters; change them and rerun.
"""),
        code("""
B, D, H, C = 16, 5, 8, 3        # batch, inputs, hidden units, classes

engine.manual_seed(0)
X = engine.randn(B, D)
y = engine.randint(0, C, (B,))
W1 = (engine.randn(D, H) * 0.5).requires_grad_()
b1 = engine.zeros(H, requires_grad=True)
W2 = (engine.randn(H, C) * 0.5).requires_grad_()
b2 = engine.zeros(C, requires_grad=True)
params = [W1, b1, W2, b2]

h = engine.tanh(X @ W1 + b1)
Z = h @ W2 + b2
loss = F.cross_entropy(Z, y)
loss.backward()
print("loss:", round(loss.item(), 5))
"""),
        code("""
with engine.no_grad():
    dZ = (F.softmax(Z, dim=1) - F.one_hot(y, C).float()) / B
    dW2 = h.T @ dZ
    db2 = dZ.sum(dim=0)
    dh = dZ @ W2.T
    dhpre = dh * (1 - h ** 2)
    dW1 = X.T @ dhpre
    db1 = dhpre.sum(dim=0)

for name, mine, auto in [("W1", dW1, W1.grad), ("b1", db1, b1.grad), ("W2", dW2, W2.grad), ("b2", db2, b2.grad)]:
    err = (mine - auto).abs().max().item()   # float32 rounding: ~1e-8 (the exact value depends on the kernels)
    print(f"{name}: shape {tuple(mine.shape)}  max |by hand - autograd| < 1e-6: {err < 1e-6}")
"""),
        md("""
Every gradient agrees to float32 rounding. Now watch autograd do the same thing. In the stepper, the
`MmBackward0` steps are the matrix rules above and `TanhBackward0` is $1 - h^2$. Cross-entropy shows up as
the few operations clgrad builds it from (a log-softmax, picking the target entries, the mean).
"""),
        code("""
%%backprop
for p in params:
    p.grad = None
loss = F.cross_entropy(engine.tanh(X @ W1 + b1) @ W2 + b2, y)
"""),
        md("""
## 4. Gradient descent closes the loop

A gradient says which way each parameter should move to *increase* the loss; a training step moves a little
the other way: $\\theta \\leftarrow \\theta - \\eta\\,\\partial L/\\partial\\theta$. Updates happen under
`no_grad()` (they are not part of the model's computation), and the gradients are reset afterwards.
"""),
        code("""
lr = 0.5
for step in range(30):
    loss = F.cross_entropy(engine.tanh(X @ W1 + b1) @ W2 + b2, y)
    for p in params:
        p.grad = None
    loss.backward()
    with engine.no_grad():
        for p in params:
            p -= lr * p.grad
    if step % 5 == 0 or step == 29:
        print(f"step {step:2d}  loss {loss.item():.4f}")
"""),
        md("""
This is all an optimizer such as `engine.optim.SGD` does (plus options like momentum), and all
`nn.Linear` is: a weight and a bias with a sensible initial scale. Notebook 4 uses both and watches training live.

## Summary

* Backprop = the chain rule, applied node by node from the loss back, each node using only its local rule.
* `+` distributes gradients, `*` swaps inputs, matrix products become products with transposes.
* `%%backprop` / `BackpropStepper` show each node's incoming gradient, rule and outgoing gradients.
"""),
    ]


# ------------------------------------------------------------------------------------------------
@notebook("04_training_an_mlp_live")
def nb04():
    return [
        md("""
# 4 · Training an MLP, live

We train a small multi-layer perceptron to recognise handwritten digits, and **watch** it learn:

* `TrainingMonitor` draws the loss and accuracy curves while the loop runs;
* `%grad_watch` opens a gradient-flow view of the model: the size of every parameter's gradient, and the
  statistics of every layer's activations.

Then we break it on purpose. A **bad initialisation** (weights far too large) pushes every `tanh` into
saturation, where its derivative is almost 0, so almost no gradient gets through and the network barely
learns. The gradient-flow view shows it at a glance, and the standard fix (scale the weights by
$1/\\sqrt{\\text{fan-in}}$) brings training back.

The sizes below keep this notebook under a minute on two CPU cores. On a GPU, make them bigger.
"""),
        code(SETUP + """
import math
import numpy as np
from sklearn.datasets import load_digits
from widgets import TrainingMonitor, GradientFlow

# ---- sizes -------------------------------------------------------------------------------
HIDDEN = 64        # units per hidden layer
LAYERS = 4         # hidden layers (tanh)
STEPS = 150        # training steps per run
BATCH = 64
LR = 0.1           # SGD learning rate (momentum 0.9)
SEED = 0
_ = engine.manual_seed(SEED)
"""),
        md("""
## The data

scikit-learn ships 1,797 digits as 8×8 grey images (no download). We scale the pixels to [0, 1], flatten each
image to 64 numbers, and keep a fixed 20% aside to measure accuracy on images the model never trained on.
"""),
        code("""
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
perm = np.random.default_rng(SEED).permutation(len(X))
n_test = len(X) // 5
test_idx, train_idx = perm[:n_test], perm[n_test:]
X_train, y_train = engine.tensor(X[train_idx]), engine.tensor(y[train_idx])
X_test, y_test = engine.tensor(X[test_idx]), engine.tensor(y[test_idx])
print("train", tuple(X_train.shape), " test", tuple(X_test.shape), " classes", int(y.max()) + 1)
X_train[:3].view(3, 8, 8)[0]   # the first training image (a heatmap in the rich display)
"""),
        md("""
## The model

`LAYERS` hidden layers of `tanh` units and a final layer of 10 class scores. `init` rescales the weights of every
`nn.Linear` by hand so we can compare two choices:

* **bad**: weights drawn from $\\mathcal N(0, 1)$. A unit then sums 64 inputs with unit-size weights, so its
  pre-activation has a standard deviation of several units and $\\tanh$ sits at ±1;
* **fixed**: $\\mathcal N(0, \\sigma^2)$ with $\\sigma = \\text{gain}/\\sqrt{\\text{fan-in}}$ and the tanh gain
  $5/3$ ("Kaiming" initialisation), which keeps the activations' spread about the same through the layers.
"""),
        code("""
def make_mlp(init):
    layers, width = [], 64
    for _ in range(LAYERS):
        layers += [nn.Linear(width, HIDDEN), nn.Tanh()]
        width = HIDDEN
    layers.append(nn.Linear(width, 10))
    model = nn.Sequential(*layers)
    with engine.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                fan_in = m.weight.shape[1]
                std = 1.0 if init == "bad" else nn.init.calculate_gain("tanh") / math.sqrt(fan_in)
                nn.init.normal_(m.weight, std=std)
                nn.init.zeros_(m.bias)
    return model


def accuracy(model, X, y):
    with engine.no_grad():
        return (model(X).argmax(dim=1) == y).float().mean().item()


def make_optimizer(model):
    return engine.optim.SGD(model.parameters(), lr=LR, momentum=0.9)


def train(model, opt, monitor, steps=STEPS):
    for step in range(steps):
        ix = engine.randint(0, len(X_train), (BATCH,))
        loss = F.cross_entropy(model(X_train[ix]), y_train[ix])
        opt.zero_grad()
        loss.backward()
        opt.step()
        monitor.log(step, loss=loss)     # a tensor: read only when the plot redraws
        if step % 25 == 0 or step == steps - 1:
            monitor.log(step, test_acc=accuracy(model, X_test, y_test))
    return loss.item()
"""),
        md("""
## Run 1: the bad initialisation

First the gradient-flow view. `%grad_watch model --every 5` attaches hooks to the model and samples every fifth
backward pass: the top-left bars are each parameter's gradient norm (log scale), the bottom-left lines their
history, the bottom-right bars each layer's activation statistics, with the **saturated fraction** of every
`tanh` (outputs beyond ±0.99) in orange.
"""),
        code("""
_ = engine.manual_seed(SEED)
model = make_mlp("bad")
%grad_watch model --every 5
"""),
        md("""
Now train. The monitor appears above the loop and redraws a few times a second while it runs (the thin line is
the raw loss, the thick one a smoothed version; the slider sets the smoothing).
"""),
        code("""
with TrainingMonitor(total=STEPS, title="bad init: N(0, 1)") as mon:
    final = train(model, make_optimizer(model), mon)
print(f"bad init: final loss {final:.3f}, test accuracy {accuracy(model, X_test, y_test):.3f}")
"""),
        md("""
Look at the gradient-flow view above: the orange saturation bars are near 1 for every tanh layer, and the
gradient shrinks on its way back through the layers, so the first layer gets the smallest. We can compute the same numbers ourselves: run one batch through
the layers, and for each tanh count the outputs beyond ±0.99 and look at the gradient of the layer before it.
"""),
        code("""
def diagnose(model):
    x = X_train[:256]
    acts = []
    h = x
    for m in model:
        h = m(h)
        if isinstance(m, nn.Tanh):
            h.retain_grad()
            acts.append(h)
    model.zero_grad()
    F.cross_entropy(h, y_train[:256]).backward()
    print("layer  saturated  |grad W| ")
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for i, (a, lin) in enumerate(zip(acts, linears)):
        sat = (a.abs() > 0.99).float().mean().item()
        print(f"tanh {i}     {sat:5.1%}    {lin.weight.grad.norm().item():.2e}")
    model.zero_grad()

diagnose(model)
"""),
        md("""
A saturated tanh passes on $1 - \\tanh^2 \\approx 0$ of its gradient, so each layer multiplies the gradient by a
small number on the way back: the first layers hardly learn, and the whole network fits the digits poorly.

`%grad_watch --off` removes the hooks.

## Run 2: the fix

Same data, same seed, same optimiser; only the initial scale changes. This time we make the gradient-flow
widget from Python (`GradientFlow(model, optimizer)`), which also tracks the **update/data ratio**: how far each
optimiser step moves a parameter relative to its size (about $10^{-3}$ is healthy).
"""),
        code("""
%grad_watch --off
_ = engine.manual_seed(SEED)
model = make_mlp("fixed")
opt = make_optimizer(model)
flow = GradientFlow(model, optimizer=opt, every=5)
flow
"""),
        code("""
with TrainingMonitor(total=STEPS, title="fixed init: N(0, (5/3)²/fan_in)") as mon:
    final = train(model, opt, mon)
print(f"fixed init: final loss {final:.3f}, test accuracy {accuracy(model, X_test, y_test):.3f}")
"""),
        code("""
diagnose(model)
"""),
        md("""
The saturation drops from about 99% to between 0 and 20%, the gradient no longer shrinks layer after layer on
its way back (the first layer now gets the largest), the loss falls much further and the test accuracy jumps. The widget's history is available from Python too:
"""),
        code("""
last = flow.history[-1]
print("samples taken:", len(flow.history), " last sampled step:", last["step"])
for name in ["0.weight", "6.weight", "8.weight"]:
    print(f"  {name}: |grad| = {last['grad_norm'][name]:.2e}   |update| / |weight| = {last['ratio'][name]:.1e}")
print("warnings:", flow.warnings or "none")
flow.detach()
"""),
        md("""
## Summary

* `TrainingMonitor` (`with TrainingMonitor(total=n) as mon: ... mon.log(step, loss=loss)`) draws live curves;
  logging a tensor is cheap, it is read only when the plot redraws.
* `%grad_watch model` / `GradientFlow(model)` show gradient norms and activation statistics while you train.
* Saturated activations block gradients. Scaling the initial weights by $\\text{gain}/\\sqrt{\\text{fan-in}}$ keeps
  them in range; this is what `nn.init.kaiming_normal_` and the default `nn.Linear` initialisation are about.
"""),
    ]


# ------------------------------------------------------------------------------------------------
@notebook("05_char_lm_makemore")
def nb05():
    return [
        md("""
# 5 · A character-level language model from scratch

A language model gives the probability of the next character given the ones before it. Once you have that, you
can **score** text (how surprised is the model?) and **generate** text (sample one character at a time). We build
three, in the spirit of Andrej Karpathy's *makemore*:

1. a **bigram** model from counting: $P(\\text{next} \\mid \\text{current})$ is a table;
2. the same bigram model as a tiny **neural network**, trained by gradient descent, which learns the same table;
3. an **MLP** that looks at several previous characters through learned embeddings (Bengio et al., 2003).

The text is the opening of Shakespeare's *Coriolanus* (`examples/data/coriolanus.txt`, 64 KB, public domain).
"""),
        code(SETUP + """
from pathlib import Path
import numpy as np
from widgets import TrainingMonitor

# ---- sizes -------------------------------------------------------------------------------
CONTEXT = 4        # characters the MLP sees
EMBED = 16         # size of each character's embedding
HIDDEN = 128       # MLP hidden units
STEPS = 600        # MLP training steps
BATCH = 128
SAMPLE_CHARS = 300
_ = engine.manual_seed(0)

path = next(p for p in [Path("../examples/data/coriolanus.txt"), Path("examples/data/coriolanus.txt")] if p.exists())
text = path.read_text(encoding="utf-8")
print(len(text), "characters")
print(text[:250])
"""),
        md("""
## Characters to numbers

The vocabulary is every distinct character. `stoi` maps a character to its index, `itos` back. The first 90% of
the text trains the models, the last 10% measures them.
"""),
        code("""
chars = sorted(set(text))
V = len(chars)
stoi = {c: i for i, c in enumerate(chars)}
itos = {i: c for c, i in stoi.items()}
ids = np.array([stoi[c] for c in text], dtype=np.int64)
n = int(0.9 * len(ids))
train_ids, val_ids = ids[:n], ids[n:]
print("vocabulary:", V, "characters:", repr("".join(chars)))
"""),
        md("""
## 1. Bigram counts

Count how often each character follows each other one: a $V \\times V$ table `N`. `index_put_(..., accumulate=True)`
adds 1 at every (current, next) pair in one kernel. The heatmap below is that table: bright cells are common
pairs (a space after a letter, `h` after `t`...).
"""),
        code("""
xs, ys = engine.tensor(train_ids[:-1]), engine.tensor(train_ids[1:])
N = engine.zeros(V, V)
N.index_put_((xs, ys), engine.ones(len(xs)), accumulate=True)
top = N.flatten().topk(8)
print("most common pairs:", [itos[i // V] + itos[i % V] for i in top.indices.tolist()])
N
"""),
        md("""
Normalising each row gives the probabilities. We add 1 to every count first ("add-one smoothing") so no pair
has probability 0. To score a model we use the **average negative log-likelihood** (NLL) of the validation
text, in nats per character: lower is better, and $\\log V$ is what a uniform guess scores.
"""),
        code("""
P = (N + 1) / (N + 1).sum(dim=1, keepdim=True)
vx, vy = engine.tensor(val_ids[:-1]), engine.tensor(val_ids[1:])
bigram_nll = -P[vx, vy].log().mean().item()
print(f"uniform guess: {np.log(V):.3f} nats/char")
print(f"bigram counts: {bigram_nll:.3f} nats/char")
"""),
        md("""
**Sampling**: start from a newline, draw the next character from the row of `P` for the current one with
`engine.multinomial`, repeat. A seeded `engine.Generator` makes the sample reproducible. Bigram text has the
right letter frequencies and short word-like chunks, but no memory beyond one character:
"""),
        code("""
def sample_bigram(P, n, seed=42):
    g = engine.Generator().manual_seed(seed)
    out, i = [], stoi["\\n"]
    for _ in range(n):
        i = engine.multinomial(P[i], 1, generator=g).item()
        out.append(itos[i])
    return "".join(out)

print(sample_bigram(P, 200))
"""),
        md("""
## 2. The same model as a neural network

A neural bigram model has one weight matrix `W` of shape $V \\times V$. For an input character $i$, its
**logits** (unnormalised log-probabilities) are row $i$ of `W`, which is the same as multiplying a one-hot
vector by `W`. Softmax turns logits into probabilities, and the loss is the NLL again, via `F.cross_entropy`.
Gradient descent should find $W \\approx \\log P$ (up to a constant per row), so it should reach about the counting
model's loss. (It ends a little lower here: the add-one smoothing of the counts costs them a bit.)
"""),
        code("""
onehot = F.one_hot(engine.tensor([stoi["t"]]), V).float()
W = (engine.randn(V, V) * 0.01).requires_grad_()
print("one-hot @ W equals W[i]:", engine.allclose(onehot @ W, W[stoi["t"]][None]))

opt = engine.optim.Adam([W], lr=0.1)
for step in range(201):
    ix = engine.randint(0, len(xs), (2048,))
    loss = F.cross_entropy(W[xs[ix]], ys[ix])
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 50 == 0:
        print(f"step {step:3d}  train loss {loss.item():.3f}")
with engine.no_grad():
    neural_nll = F.cross_entropy(W[vx], vy).item()
print(f"neural bigram: {neural_nll:.3f} nats/char   (counts: {bigram_nll:.3f})")
"""),
        md("""
## 3. An MLP over several characters

To do better the model must see more than one character. Following Bengio et al. (2003):

1. each of the last `CONTEXT` characters is looked up in an **embedding** table `C` ($V \\times$ `EMBED`), a
   learned vector per character;
2. the vectors are concatenated and go through a `tanh` hidden layer;
3. a linear layer gives the logits for the next character.

The training examples are every window of `CONTEXT` characters and the character after it.
"""),
        code("""
def windows(a, k):
    idx = np.arange(len(a) - k)[:, None] + np.arange(k)[None, :]
    return engine.tensor(a[idx]), engine.tensor(a[k:])

Xtr, Ytr = windows(train_ids, CONTEXT)
Xva, Yva = windows(val_ids, CONTEXT)
print("train examples", tuple(Xtr.shape), " e.g.", repr("".join(itos[i] for i in Xtr[100].tolist())),
      "->", repr(itos[Ytr[100].item()]))

_ = engine.manual_seed(0)
mlp = nn.Sequential(
    nn.Embedding(V, EMBED),                 # (B, CONTEXT) -> (B, CONTEXT, EMBED)
    nn.Flatten(),                           # -> (B, CONTEXT * EMBED)
    nn.Linear(CONTEXT * EMBED, HIDDEN), nn.Tanh(),
    nn.Linear(HIDDEN, V),
)
print(sum(p.numel() for p in mlp.parameters()), "parameters")
mlp
"""),
        md("""
Train with Adam on random mini-batches, watching the loss live; every 100 steps we also log the validation loss.
"""),
        code("""
def val_loss(model):
    model.eval()
    with engine.no_grad():
        out = F.cross_entropy(model(Xva), Yva).item()
    model.train()
    return out

opt = engine.optim.Adam(mlp.parameters(), lr=3e-3)
with TrainingMonitor(total=STEPS, title="MLP language model") as mon:
    for step in range(STEPS):
        ix = engine.randint(0, len(Xtr), (BATCH,))
        loss = F.cross_entropy(mlp(Xtr[ix]), Ytr[ix])
        opt.zero_grad()
        loss.backward()
        opt.step()
        mon.log(step, loss=loss)
        if step % 100 == 0 or step == STEPS - 1:
            mon.log(step, val_loss=val_loss(mlp))
mlp_nll = val_loss(mlp)
print(f"bigram counts {bigram_nll:.3f}  neural bigram {neural_nll:.3f}  MLP ({CONTEXT} chars) {mlp_nll:.3f} nats/char")
"""),
        md("""
Sampling works as before, except the model now conditions on the last `CONTEXT` characters. With more context,
more training and a bigger model, the words get longer and more English; notebook 6 replaces the MLP with
attention.
"""),
        code("""
@engine.no_grad()
def sample_mlp(model, n, seed=42):
    model.eval()
    g = engine.Generator().manual_seed(seed)
    ctx, out = [stoi["\\n"]] * CONTEXT, []
    for _ in range(n):
        probs = F.softmax(model(engine.tensor([ctx])), dim=-1)[0]
        i = engine.multinomial(probs, 1, generator=g).item()
        out.append(itos[i])
        ctx = ctx[1:] + [i]
    model.train()
    return "".join(out)

print(sample_mlp(mlp, SAMPLE_CHARS))
"""),
        md("""
## Summary

* A language model = a probability for the next character; NLL (nats/char) measures it, sampling uses it.
* Counting bigrams and training a one-layer network on the same data give the same model.
* Embeddings + an MLP over a window of characters beat the bigram; the remaining limit is the fixed window.
"""),
    ]


# ------------------------------------------------------------------------------------------------
@notebook("06_small_gpt")
def nb06():
    return [
        md("""
# 6 · A small GPT from scratch

The MLP of notebook 5 sees a fixed window and mixes it with fixed weights. A **transformer** lets every position
decide, from the data, which earlier positions matter: that is **self-attention**. In this notebook we

1. build causal self-attention from matrix products and a mask, step by step;
2. assemble a small GPT (embeddings, transformer blocks, a language-model head);
3. train it on Shakespeare with live loss curves;
4. sample text;
5. save a checkpoint and load it into a fresh model.

The model is tiny so that it trains in well under a minute on two CPU cores; the code is the same for a big one.
"""),
        code(SETUP + """
import math
import os
import tempfile
from pathlib import Path
import numpy as np
from widgets import TrainingMonitor

# ---- sizes -------------------------------------------------------------------------------
BLOCK = 32         # context length (characters)
N_EMBD = 32        # width of the residual stream
N_HEAD = 4         # attention heads
N_LAYER = 2        # transformer blocks
BATCH = 16
STEPS = 100        # training steps
LR = 1e-2
SAMPLE_CHARS = 150
_ = engine.manual_seed(0)

path = next(p for p in [Path("../examples/data/coriolanus.txt"), Path("examples/data/coriolanus.txt")] if p.exists())
text = path.read_text(encoding="utf-8")
chars = sorted(set(text))
V = len(chars)
stoi = {c: i for i, c in enumerate(chars)}
itos = {i: c for c, i in stoi.items()}
data = engine.tensor([stoi[c] for c in text])
n = int(0.9 * len(data))
train_data, val_data = data[:n], data[n:]
print(f"{len(text)} characters, vocabulary {V}; train {len(train_data)}, validation {len(val_data)}")
"""),
        md("""
## 1. Attention, step by step

Start with a batch of one sequence of `T = 5` positions, each a vector of `C = 8` numbers.

**The simplest mixing**: let each position take the *average* of itself and all earlier positions. Averaging
is a matrix product with a lower-triangular weight matrix whose rows sum to 1. We build it the way attention
will: scores of 0 where a position may look and $-\\infty$ where it may not (the future), then a softmax per row.
"""),
        code("""
T, C = 5, 8
x = engine.randn(1, T, C)
mask = engine.tril(engine.ones(T, T, dtype=engine.bool))          # True where position t may look at s <= t
scores = engine.zeros(T, T).masked_fill(~mask, float("-inf"))
weights = F.softmax(scores, dim=-1)
print(weights)
avg = weights @ x                                                 # (T, T) @ (1, T, C) -> (1, T, C)
print("row 2 is the mean of x[0..2]:", engine.allclose(avg[0, 2], x[0, :3].mean(dim=0), atol=1e-6))
"""),
        md("""
**Attention** makes those scores depend on the data. Each position emits a **query** ("what am I looking for?")
and a **key** ("what do I contain?"), both learned linear maps of $x$. The score of position $t$ for position
$s$ is the dot product $q_t \\cdot k_s$, scaled by $1/\\sqrt{d}$ so the softmax does not saturate. The output
mixes the **values** $v_s$ (a third linear map) with those weights:

$$\\operatorname{Attention}(Q, K, V) = \\operatorname{softmax}\\!\\left(\\frac{QK^\\top}{\\sqrt d} + \\text{mask}\\right)V.$$
"""),
        code("""
d = 4
q_proj, k_proj, v_proj = nn.Linear(C, d, bias=False), nn.Linear(C, d, bias=False), nn.Linear(C, d, bias=False)
q, k, v = q_proj(x), k_proj(x), v_proj(x)                     # each (1, T, d)
att = (q @ k.transpose(-2, -1)) / math.sqrt(d)                # (1, T, T): every query against every key
att = att.masked_fill(~mask, float("-inf"))                   # no looking ahead
att = F.softmax(att, dim=-1)
out = att @ v                                                 # (1, T, d)
print("attention weights (rows sum to 1, zeros above the diagonal):")
print(att[0].detach())
"""),
        md("""
`F.scaled_dot_product_attention(q, k, v, is_causal=True)` computes the same thing in one call:
"""),
        code("""
fused = F.scaled_dot_product_attention(q, k, v, is_causal=True)
print("same result:", engine.allclose(fused, out, atol=1e-6))
"""),
        md("""
## 2. The GPT

* **Multi-head** attention runs `N_HEAD` attentions of width `N_EMBD / N_HEAD` side by side (one `nn.Linear`
  makes all queries, keys and values at once) and mixes their outputs with a projection.
* A **block** is attention then a small MLP, each wrapped as `x = x + f(LayerNorm(x))`: the residual connections
  give gradients a direct path, and LayerNorm keeps the activations in range.
* The **GPT** adds a token embedding and a position embedding (attention alone does not know the order), stacks
  `N_LAYER` blocks, and maps the result to `V` logits per position.
"""),
        code("""
class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, heads, T, head size): each head attends on its own
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)         # heads side by side again
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))     # communicate: look at other positions
        x = x + self.mlp(self.ln2(x))      # compute: think about what was gathered
        return x


class GPT(nn.Module):
    def __init__(self, vocab, block, n_embd, n_head, n_layer):
        super().__init__()
        self.block = block
        self.tok_emb = nn.Embedding(vocab, n_embd)
        self.pos_emb = nn.Embedding(block, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab, bias=False)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        x = self.tok_emb(idx) + self.pos_emb(engine.arange(T))
        for blk in self.blocks:
            x = blk(x)
        logits = self.head(self.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
        return logits, loss

    @engine.no_grad()
    def generate(self, idx, n, generator=None):
        for _ in range(n):
            logits, _ = self(idx[:, -self.block:])
            probs = F.softmax(logits[:, -1, :], dim=-1)
            idx = engine.cat([idx, engine.multinomial(probs, 1, generator=generator)], dim=1)
        return idx


_ = engine.manual_seed(0)
config = dict(vocab=V, block=BLOCK, n_embd=N_EMBD, n_head=N_HEAD, n_layer=N_LAYER)
model = GPT(**config)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters")
"""),
        md("""
## 3. Training, with live curves

A batch is `BATCH` random windows of `BLOCK` characters; the targets are the same windows shifted by one, so
every position learns to predict its next character. AdamW with a short warm-up and cosine decay of the learning
rate, and gradient clipping, as in real GPT training. The validation loss uses fixed batches (a seeded generator)
so the numbers compare across calls.
"""),
        code("""
def get_batch(split, generator=None):
    src = train_data if split == "train" else val_data
    ix = engine.randint(0, len(src) - BLOCK - 1, (BATCH, 1), generator=generator)
    offsets = ix + engine.arange(BLOCK)
    return src[offsets], src[offsets + 1]


@engine.no_grad()
def estimate_loss(model, iters=4):
    g = engine.Generator().manual_seed(1234)
    model.eval()
    losses = [model(*get_batch("val", g))[1].item() for _ in range(iters)]
    model.train()
    return sum(losses) / iters


opt = engine.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.99), weight_decay=0.01)
warmup = STEPS // 10
sched = engine.optim.lr_scheduler.LambdaLR(
    opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / STEPS))))
print(f"validation loss before training: {estimate_loss(model):.3f} (uniform guess: {math.log(V):.3f})")
"""),
        code("""
with TrainingMonitor(total=STEPS, title="GPT on Coriolanus") as mon:
    for step in range(STEPS):
        xb, yb = get_batch("train")
        _, loss = model(xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        mon.log(step, loss=loss, lr=sched.get_last_lr()[0])
        if step % 40 == 0 or step == STEPS - 1:
            mon.log(step, val_loss=estimate_loss(model))
val_after = estimate_loss(model)
print(f"validation loss after {STEPS} steps: {val_after:.3f}")
"""),
        md("""
## 4. Sampling

Start from a newline and let the model write. After only a hundred-odd steps on 58 KB of text, expect
Shakespeare-shaped gibberish: line breaks, capitalised names with colons, short word-like chunks. Raise `STEPS`
(and the sizes, on a GPU) and the words improve.
"""),
        code("""
g = engine.Generator().manual_seed(42)
start = engine.tensor([[stoi["\\n"]]])
out = model.generate(start, SAMPLE_CHARS, generator=g)
print("".join(itos[i] for i in out[0].tolist()))
"""),
        md("""
## 5. Saving and loading a checkpoint

`model.state_dict()` is an ordered dict of every parameter and buffer by name; `engine.save` writes it (with the
optimiser's state, so training can resume) and `engine.load` reads it back, as `torch.save` / `torch.load` do. A
fresh model with `load_state_dict` then computes exactly the same loss.
"""),
        code("""
ckpt_dir = tempfile.mkdtemp()
ckpt = os.path.join(ckpt_dir, "gpt.pt")
engine.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "config": config, "step": STEPS}, ckpt)
print("saved", len(model.state_dict()), "tensors;", "first keys:", list(model.state_dict())[:4])

state = engine.load(ckpt)
fresh = GPT(**state["config"])
result = fresh.load_state_dict(state["model"])
print("missing keys:", result.missing_keys, " unexpected keys:", result.unexpected_keys)
print(f"original {estimate_loss(model):.6f}  reloaded {estimate_loss(fresh):.6f}")
same = all(engine.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
print("identical weights:", same, " resumes at step", state["step"])
"""),
        md("""
## Summary

* Causal self-attention = softmax of masked, scaled query-key dot products, used to mix values.
* A GPT = token + position embeddings, blocks of (attention, MLP) with residuals and LayerNorm, and a linear head.
* `engine.save` / `engine.load` + `state_dict` / `load_state_dict` checkpoint a model and its optimiser.

`examples/gpt.py` is the same model as a script (`python examples/gpt.py --torch` runs it on PyTorch).
"""),
    ]


# ------------------------------------------------------------------------------------------------
@notebook("07_speed")
def nb07():
    return [
        md("""
# 7 · Speed: where the time goes

Every clgrad operation launches one or more OpenCL kernels. To make a model fast you need to know which kernels
run, how long each takes, and what else costs time (compiling kernels, copying data, Python overhead). This
notebook

1. profiles a training step with `%%cl_profile`;
2. shows the cost of **compiling** a kernel the first time, and of **asynchronous** execution when timing;
3. puts clgrad side by side with the CPU (NumPy and PyTorch) on the same operations.

Timings depend on the machine and on what else runs on it, so those outputs are not checked by CI (their cells
say `# NBVAL_IGNORE_OUTPUT`); the results themselves are checked.
"""),
        code(SETUP + """
import time
import numpy as np
import torch   # PyTorch, CPU: the reference

# ---- sizes -------------------------------------------------------------------------------
BATCH = 64
WIDTH = 256
MATMUL_SIZES = [64, 128, 256, 512]
REPEAT = 5
_ = engine.manual_seed(0)
print("clgrad device:", engine.get_default_device())
"""),
        md("""
## 1. `%%cl_profile`: kernels of one training step

`%%cl_profile` runs the cell with OpenCL profiling events on and shows one row per kernel: how many times it
launched, its total and mean device time, its share, and its effective memory bandwidth. `--sort calls` orders by
launches instead. Click a column to sort; the timeline shows when each launch ran.

We warm up first (one step builds every kernel), then profile three steps of an MLP with Adam.
"""),
        code("""
model = nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 10))
opt = engine.optim.Adam(model.parameters(), lr=1e-3)
xb, yb = engine.randn(BATCH, WIDTH), engine.randint(0, 10, (BATCH,))

def step():
    loss = F.cross_entropy(model(xb), yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss

print(f"warm-up step, loss {step().item():.4f}")   # kernels are compiled here
"""),
        code("""
%%cl_profile
# NBVAL_IGNORE_OUTPUT
# (device times differ from run to run; a cell magic must come first)
for _ in range(3):
    step()
engine.synchronize()
"""),
        md("""
The profile is also available from Python (`engine.profiler.profile`), to aggregate or compare in code. The
*number* of kernel launches per step does not depend on timing, so we can print it reproducibly:
"""),
        code("""
with engine.profiler.profile() as prof:
    step()
kernels = [r for r in prof.records if r["kind"] == "kernel"]
copies = [r for r in prof.records if r["kind"] == "copy"]
names = sorted({r["name"] for r in kernels})
print(f"one step: {len(kernels)} kernel launches of {len(names)} kernels, and {len(copies)} copies")
print(names)
"""),
        md("""
`prof.table()` is the same table as text (sorted by total device time), and `prof.export_chrome_trace(path)`
writes a trace that `chrome://tracing` or Perfetto can open.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
# (timings)
print(prof.table(row_limit=8))
"""),
        md("""
## 2. Compiling, and timing asynchronous code

**Compilation.** The first time clgrad needs a kernel (a given op, dtype, rank and layout) it generates OpenCL
source and the driver compiles it, which takes 0.1–1 s with PoCL. Compiled programs are cached in memory and on
disk, and kernels take sizes as arguments, so one compiled kernel serves every shape afterwards.

**Asynchrony.** A launch only *queues* a kernel. Timing `a @ b` alone measures the queueing; call
`engine.synchronize()` (or read a result) before stopping the clock.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
# (timings)
def timed(fn, sync=True):
    t0 = time.perf_counter()
    fn()
    if sync:
        engine.synchronize()
    return time.perf_counter() - t0

a = engine.randn(512, 512)
k = engine.tensor(0.731)                       # an unusual op chain, so its kernels are new here
first = timed(lambda: (a * k).atan2(a + k))
second = timed(lambda: (a * k).atan2(a + k))
print(f"first call (includes compiling): {first * 1e3:8.2f} ms")
print(f"second call (cached kernel):     {second * 1e3:8.2f} ms")
b = engine.randn(512, 512)
print(f"512x512 matmul, not synchronised: {timed(lambda: a @ b, sync=False) * 1e3:6.2f} ms  (only queued)")
print(f"512x512 matmul, synchronised:     {timed(lambda: a @ b) * 1e3:6.2f} ms")
"""),
        md("""
## 3. Side by side with the CPU

The same operations on clgrad (here the CPU through PoCL; a GPU if you have one), NumPy, and PyTorch's own CPU
backend. We first check that all three agree, then time each (best of `REPEAT`, after a warm-up).
"""),
        code("""
def best(fn, sync):
    fn(); sync()
    ts = []
    for _ in range(REPEAT):
        t0 = time.perf_counter(); fn(); sync(); ts.append(time.perf_counter() - t0)
    return min(ts)

no_sync = lambda: None
rows = []
for n in MATMUL_SIZES:
    A = np.random.default_rng(n).standard_normal((n, n), dtype=np.float32)
    Bm = np.random.default_rng(n + 1).standard_normal((n, n), dtype=np.float32)
    ea, eb = engine.tensor(A), engine.tensor(Bm)
    ta, tb = torch.from_numpy(A), torch.from_numpy(Bm)
    ok = np.allclose((ea @ eb).numpy(), A @ Bm, rtol=1e-3, atol=1e-3) and np.allclose((ta @ tb).numpy(), A @ Bm, rtol=1e-3, atol=1e-3)
    print(f"matmul {n}x{n}: clgrad, NumPy and PyTorch agree: {ok}")
    rows.append((f"matmul {n}", 2 * n ** 3,
                 best(lambda: ea @ eb, engine.synchronize), best(lambda: A @ Bm, no_sync), best(lambda: ta @ tb, no_sync)))
"""),
        code("""
x_np = np.random.default_rng(0).standard_normal(1_000_000, dtype=np.float32)
x_cl, x_th = engine.tensor(x_np), torch.from_numpy(x_np)
ok = np.allclose(engine.tanh(x_cl * 2 + 1).numpy(), np.tanh(x_np * 2 + 1), atol=1e-5)
print("elementwise tanh(2x + 1) on 1M elements agrees:", ok)
rows.append(("tanh(2x+1) 1M", 3 * x_np.size, best(lambda: engine.tanh(x_cl * 2 + 1), engine.synchronize),
             best(lambda: np.tanh(x_np * 2 + 1), no_sync), best(lambda: torch.tanh(x_th * 2 + 1), no_sync)))
ok = abs(x_cl.sum().item() - float(x_np.sum(dtype=np.float64))) < 1e-1
print("sum of 1M elements agrees:", ok)
rows.append(("sum 1M", x_np.size, best(lambda: x_cl.sum(), engine.synchronize),
             best(lambda: x_np.sum(), no_sync), best(lambda: x_th.sum(), no_sync)))
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
# (timings)
print(f"{'operation':<16}{'clgrad ms':>11}{'NumPy ms':>11}{'PyTorch ms':>12}   clgrad GFLOP/s")
for name, flops, t_cl, t_np, t_th in rows:
    print(f"{name:<16}{t_cl * 1e3:>11.3f}{t_np * 1e3:>11.3f}{t_th * 1e3:>12.3f}   {flops / t_cl / 1e9:8.2f}")
"""),
        md("""
How to read it:

* **Matrix products** on a CPU device use the CPU's BLAS through mapped buffers (as PyTorch uses MKL), so
  clgrad is close to NumPy there, except for tiny products, where an OpenCL kernel is quicker to launch; on a
  GPU the OpenCL kernel always runs.
* **Small operations** are dominated by fixed costs: a kernel launch and Python overhead are a few microseconds
  each, which is why a tiny MLP step takes longer than its arithmetic suggests. Larger batches amortise them.
* **Elementwise chains** launch one kernel per operation and read and write memory each time; PyTorch's CPU
  backend does the same, NumPy too.

Finally, the whole training step on both libraries (the same model and batch, PyTorch on its CPU backend):
"""),
        code("""
tmodel = torch.nn.Sequential(torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, WIDTH),
                             torch.nn.ReLU(), torch.nn.Linear(WIDTH, 10))
with torch.no_grad():   # same weights as the clgrad model
    for tp, ep in zip(tmodel.parameters(), model.parameters()):
        tp.copy_(torch.from_numpy(ep.detach().numpy()))
e_loss = F.cross_entropy(model(xb), yb).item()
t_loss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(xb.numpy())), torch.from_numpy(yb.numpy())).item()
print("same weights, same loss:", abs(e_loss - t_loss) < 1e-4)
topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
txb, tyb = torch.from_numpy(xb.numpy()), torch.from_numpy(yb.numpy())

def tstep():
    loss = torch.nn.functional.cross_entropy(tmodel(txb), tyb)
    topt.zero_grad()
    loss.backward()
    topt.step()
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
# (timings)
t_cl, t_th = best(step, engine.synchronize), best(tstep, no_sync)
print(f"training step, MLP {WIDTH}-{WIDTH}-{WIDTH}-10, batch {BATCH}:  clgrad {t_cl * 1e3:.2f} ms   PyTorch CPU {t_th * 1e3:.2f} ms")
"""),
        md("""
## 4. `engine.compile`: one plan instead of op-by-op dispatch

`engine.compile(model)` is clgrad's `torch.compile`. The first call runs the model eagerly while the runtime
records every kernel launch, and records the backward pass too; later calls *replay* that plan: no Python per
op, and chains of elementwise kernels fused into single generated kernels. Results are the eager ones (within
float32 rounding). A new input shape traces again; Python that reads tensor values falls back to eager, with
the reason in `explain()`.
"""),
        code("""
cmodel = engine.compile(model)            # same parameters: the optimizer keeps working

def cstep():
    loss = F.cross_entropy(cmodel(xb), yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss

for _ in range(3):
    cstep()                                # the first call traces, the others replay
out_c, out_e = cmodel(xb), model(xb)
print("compiled output equals eager:", np.allclose(out_c.detach().numpy(), out_e.detach().numpy(), atol=1e-6))
info = cmodel.explain()
print(f"traces {info['traces']}, replays {info['replays']}, fallbacks {info['reasons']}")
print(f"forward + backward: {info['launches_before']} eager launches -> {info['launches_after']} replayed steps")
"""),
        md("""
`FusedGraphView` draws the plan: one node per replayed kernel (GEMMs, reductions, copies), and each fused
kernel lists the eager ops it replaced (hover or click a node). The boxes separate the forward plan from the
backward plan.
"""),
        code("""
from widgets import FusedGraphView
FusedGraphView(cmodel, height=420)
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
# (timings)
t_eager, t_comp = best(step, engine.synchronize), best(cstep, engine.synchronize)
print(f"training step: eager {t_eager * 1e3:.2f} ms, compiled {t_comp * 1e3:.2f} ms")
"""),
        md("""
## Summary

* `%%cl_profile` (or `engine.profiler.profile`) shows which kernels ran and where device time went.
* Warm up before timing (compilation), and synchronise before stopping the clock (asynchrony).
* `engine.compile` replays a recorded plan with fused kernels; `FusedGraphView` shows what it fused.
* `benchmarks/run.py` (`make bench`) runs a fuller clgrad-vs-PyTorch comparison, including the example models.
"""),
    ]


def build(stem):
    nb = nbf.v4.new_notebook(cells=NOTEBOOKS[stem]())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbf.validate(nb)
    return nb


def main(argv):
    wanted = [s for s in NOTEBOOKS if not argv or any(s.startswith(a) for a in argv)]
    for stem in wanted:
        nbf.write(build(stem), HERE / f"{stem}.ipynb")
        print(f"wrote notebooks/{stem}.ipynb")


if __name__ == "__main__":
    main(sys.argv[1:])
