"""Elementwise epilogues of the tiled GEMM (engine.compile's GEMM + elementwise fusion).

A recorded GEMM whose result C is read, element for element, by an elementwise kernel (a bias-free
residual add, GELU, GELU's backward ...) can apply that kernel's expression to each result while it
is still in registers: the consumer's launch disappears, and so do C's write and its read back (when
nothing else needs C; otherwise the kernel stores both).  The expression, its operands and their
modes come from runtime/elementwise.py's description of the consumer (`Step.ew`); C's element
(z, gm, gn) is the consumer's flat index f = (z * M + gm) * N + gn, since fusion/requires C to be
dense in that order.

Operand modes: 'C' the GEMM result, 'c' dense (read at f), 'v' strided over the collapsed shape
(dims `d*`), 's' a scalar kernel argument.
"""
from . import elementwise as _ew


class Epilogue:
    """What to generate: `expr` over v1..vN, `specs` [('c', out_ct)] + one per operand
    (('C'|'c'|'v', ctype, compute ctype) or ('s', ctype)), `ndim` of the strided index, whether C is
    stored too, and the consumer's preamble (helper functions its expression calls)."""
    __slots__ = ("expr", "specs", "ndim", "keep_c", "pre")

    def __init__(self, expr, specs, ndim, keep_c, pre):
        self.expr, self.specs, self.ndim, self.keep_c, self.pre = expr, tuple(specs), ndim, keep_c, pre

    def key(self):
        return (self.expr, self.specs, self.ndim, self.keep_c, self.pre)

    @property
    def strided(self):
        return any(sp[0] == "v" for sp in self.specs[1:])


def params(epi, idx_t):
    """The epilogue's kernel parameters, appended after the GEMM's own."""
    out = [f"__global {epi.specs[0][1]}* e_out", f"const {idx_t} e_off"]
    for i, sp in enumerate(epi.specs[1:], 1):
        if sp[0] == "s":
            out.append(f"const {sp[1]} v{i}")
        elif sp[0] in ("c", "v"):
            out.append(f"__global const {sp[1]}* e_in{i}")
            out.append(f"const {idx_t} e_off{i}")
            if sp[0] == "v":
                out += [f"const {idx_t} e_s{i}_{d}" for d in range(epi.ndim)]
    if epi.strided:
        out += [f"const {idx_t} e_d{d}" for d in range(epi.ndim)]
    return "".join(", " + p for p in out)


def body(epi, idx_t):
    """Statements run per valid (gm, gn) after `c_`, the GEMM's result in the storage type, is set."""
    out_ct = epi.specs[0][1]
    expr = _ew.single_precision(epi.expr, out_ct, epi.specs)
    lines = [f"const {idx_t} f_ = ((({idx_t})z * M + gm) * N + gn);"]
    if epi.strided:
        lines.append(f"{idx_t} r_ = f_;")
        for d in range(epi.ndim - 1, 0, -1):
            lines.append(f"const {idx_t} i{d} = r_ % e_d{d}; r_ /= e_d{d};")
        lines.append(f"const {idx_t} i0 = r_;")
    for i, sp in enumerate(epi.specs[1:], 1):
        if sp[0] == "C":
            lines.append(f"const {sp[2]} v{i} = ({sp[2]})c_;")
        elif sp[0] == "c":
            lines.append(f"const {sp[2]} v{i} = ({sp[2]})e_in{i}[e_off{i} + f_];")
        elif sp[0] == "v":
            pos = " + ".join(f"i{d} * e_s{i}_{d}" for d in range(epi.ndim))
            lines.append(f"const {sp[2]} v{i} = ({sp[2]})e_in{i}[e_off{i} + {pos}];")
    lines.append(f"e_out[e_off + f_] = ({out_ct})({expr});")
    return " ".join(lines)


def vector_ok(epi, v):
    """The run-time condition for the vector epilogue: N, the output and every dense operand aligned to
    v elements (C's own alignment is the kernel's)."""
    conds = [f"((((size_t)e_out / sizeof({epi.specs[0][1]})) + (size_t)e_off) | (size_t)N) & {v - 1}"]
    for i, sp in enumerate(epi.specs[1:], 1):
        if sp[0] == "c":
            conds.append(f"(((size_t)e_in{i} / sizeof({sp[1]})) + (size_t)e_off{i}) & {v - 1}")
    return "(" + " | ".join(f"({c})" for c in conds) + ") == 0"


def vector_body(epi, v, idx_t):
    """Statements for v adjacent results (gn .. gn + v - 1, all valid; c4 holds them in the storage type):
    vector loads of the dense operands, the expression per component, one vector store."""
    out_ct = epi.specs[0][1]
    expr = _ew.single_precision(epi.expr, out_ct, epi.specs)
    lines = [f"const {idx_t} f_ = ((({idx_t})z * M + gm) * N + gn);"]
    for i, sp in enumerate(epi.specs[1:], 1):
        if sp[0] == "c":
            lines.append(f"const {sp[1]}{v} x{i} = *(__global const {sp[1]}{v}*)(e_in{i} + e_off{i} + f_);")
    comps = []
    for c in range(v):
        def sub(m, c=c):
            i = int(m.group(1))
            sp = epi.specs[i]
            if sp[0] == "C":
                return f"(({sp[2]})c4.s{c})"
            if sp[0] == "c":
                return f"(({sp[2]})x{i}.s{c})"
            return m.group(0)
        comps.append(f"({out_ct})({_ew.OPERAND.sub(sub, expr)})")
    lines.append(f"*(__global {out_ct}{v}*)(e_out + e_off + f_) = ({out_ct}{v})({', '.join(comps)});")
    return " ".join(lines)
