"""Math functions for kernels built for PoCL's CPU device, in a form its compiler can vectorise.

PoCL (3.0, the pip binary distribution) compiles a kernel's work-items into loops that LLVM vectorises,
but its OpenCL math builtins are out-of-line calls that LLVM may not inline ("conflicting attributes"),
and a loop with a call is not vectorised.  So one `sqrt`, `fabs` or `fmax` in a kernel made the whole
work-group scalar, and each call cost ~1.5 ns (2-core EPYC, 65,536 floats: `v + 1` 15 us, `sqrt(v)` 96 us,
`exp(v)` 330 us, `erf(v)` 1,030 us; the tiny GPT of notebook 06 spent half its device time in GELU).

The prelude below, put in front of every program built for a PoCL CPU device, maps these names to:
  * clang's `__builtin_*` forms (sqrt, fabs, floor, fmax, fma, ...): LLVM intrinsics that become single
    vector instructions (`sqrt(v)` 96 -> 16 us);
  * min / max / clamp of scalars as compare-and-select, mul_hi of 32-bit scalars by a 64-bit product;
  * for exp, log, tanh, erf, expm1 and log1p in float: polynomial versions written in plain arithmetic
    and selects (Cephes' expf/logf/tanhf, Eigen's float erf), within 2 ulp of the exact result over the
    whole float range (expm1/log1p 3; erf 6, an absolute 3e-7 as it nears +-1; PoCL's SLEEF builtins are
    1 ulp), NaN, infinities and denormals included (tests/engine/test_cpu_math.py sweeps them).
Double and vector arguments keep PoCL's own builtins (declared before the macros, so they still reach
them).  Every function is `static inline`: a plain C99 `inline` definition emits no symbol, and where
LLVM chose not to inline a call PoCL linked a program without its kernels (INVALID_KERNEL_NAME).  CLGRAD_CPU_MATH=0 turns the prelude off.
"""
import os
import re

_FLOAT_ONLY = {   # name -> arity; scalar float/double go to __builtin_<name>f / __builtin_<name>
    "sqrt": 1, "fabs": 1, "floor": 1, "ceil": 1, "trunc": 1, "rint": 1, "round": 1,
    "fmax": 2, "fmin": 2, "copysign": 2, "fma": 3,
}
_POLY = ("exp", "log", "tanh", "erf", "expm1", "log1p")   # float: our inline versions; double: PoCL's
_VEC = ("2", "3", "4", "8", "16")

_FLOAT_IMPL = r"""
static inline float __cg_expf(float x) {
    /* Cephes expf: x = k ln2 + r, |r| <= ln2 / 2, e^r by a degree-6 polynomial, 2^k by exponent bits
       (in two factors, so results down to the denormals and up to overflow come out right) */
    float kf = __builtin_rintf(x * 1.44269504088896341f);
    float r = __builtin_fmaf(kf, -0.693359375f, x);
    r = __builtin_fmaf(kf, 2.12194440e-4f, r);
    float p = 1.9875691500E-4f;
    p = __builtin_fmaf(p, r, 1.3981999507E-3f);
    p = __builtin_fmaf(p, r, 8.3334519073E-3f);
    p = __builtin_fmaf(p, r, 4.1665795894E-2f);
    p = __builtin_fmaf(p, r, 1.6666665459E-1f);
    p = __builtin_fmaf(p, r, 5.0000001201E-1f);
    p = __builtin_fmaf(p, r * r, r + 1.0f);
    int k = (int)__builtin_fminf(__builtin_fmaxf(kf, -252.0f), 254.0f);
    int k1 = k >> 1;
    float y = p * as_float((k1 + 127) << 23) * as_float((k - k1 + 127) << 23);
    y = x > 88.72283935546875f ? INFINITY : y;
    return x < -103.97208404541015625f ? 0.0f : y;
}

static inline float __cg_logf(float x) {
    /* Cephes logf: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) by a degree-9 polynomial in m - 1 */
    int den = x < 1.17549435e-38f;
    float s = den ? x * 8388608.0f : x;
    int ix = as_int(s);
    int e = ((ix >> 23) & 0xff) - 126 - (den ? 23 : 0);
    float m = as_float((ix & 0x007fffff) | 0x3f000000);           /* [0.5, 1) */
    int lo = m < 0.707106781186547524f;
    e = lo ? e - 1 : e;
    float f = (lo ? m + m : m) - 1.0f;
    float z = f * f;
    float p = 7.0376836292E-2f;
    p = __builtin_fmaf(p, f, -1.1514610310E-1f);
    p = __builtin_fmaf(p, f, 1.1676998740E-1f);
    p = __builtin_fmaf(p, f, -1.2420140846E-1f);
    p = __builtin_fmaf(p, f, 1.4249322787E-1f);
    p = __builtin_fmaf(p, f, -1.6668057665E-1f);
    p = __builtin_fmaf(p, f, 2.0000714765E-1f);
    p = __builtin_fmaf(p, f, -2.4999993993E-1f);
    p = __builtin_fmaf(p, f, 3.3333331174E-1f);
    float ef = (float)e;
    float y = p * f * z;
    y = __builtin_fmaf(ef, -2.12194440e-4f, y);
    y = __builtin_fmaf(-0.5f, z, y);
    y = f + y;
    y = __builtin_fmaf(ef, 0.693359375f, y);
    y = x == INFINITY ? INFINITY : y;
    y = x == 0.0f ? -INFINITY : y;
    return (x < 0.0f || x != x) ? NAN : y;
}

static inline float __cg_expm1f(float x) {
    /* |x| < 0.5: e^x - 1 = r + r^2/2 + r^3 p(r) without the cancellation of exp(x) - 1 */
    float p = 2.7557319224E-6f;
    p = __builtin_fmaf(p, x, 2.4801587302E-5f);
    p = __builtin_fmaf(p, x, 1.9841269841E-4f);
    p = __builtin_fmaf(p, x, 1.3888888889E-3f);
    p = __builtin_fmaf(p, x, 8.3333333333E-3f);
    p = __builtin_fmaf(p, x, 4.1666666667E-2f);
    p = __builtin_fmaf(p, x, 1.6666666667E-1f);
    float small = __builtin_fmaf(p * x, x * x, __builtin_fmaf(0.5f * x, x, x));
    float big = __cg_expf(x) - 1.0f;
    return __builtin_fabsf(x) < 0.5f ? small : big;
}

static inline float __cg_log1pf(float x) {
    /* log(u) with u = 1 + x rounded, corrected by (x - (u - 1)) / u (Goldberg's trick) */
    float u = 1.0f + x;
    float d = u - 1.0f;
    float y = __cg_logf(u);
    float c = d == 0.0f ? x : y * (x / d);
    return (u == INFINITY) ? INFINITY : c;
}

static inline float __cg_tanhf(float x) {
    /* Cephes tanhf: an odd polynomial for |x| < 0.625, else 1 - 2 / (e^{2|x|} + 1) */
    float z = __builtin_fabsf(x);
    float x2 = x * x;
    float p = -5.70498872745E-3f;
    p = __builtin_fmaf(p, x2, 2.06390887954E-2f);
    p = __builtin_fmaf(p, x2, -5.37397155531E-2f);
    p = __builtin_fmaf(p, x2, 1.33314422036E-1f);
    p = __builtin_fmaf(p, x2, -3.33332819422E-1f);
    float small = __builtin_fmaf(p * x2, x, x);
    float big = __builtin_copysignf(1.0f - 2.0f / (__cg_expf(2.0f * z) + 1.0f), x);
    return z < 0.625f ? small : (x != x ? x : big);
}

static inline float __cg_erff(float x) {
    /* Eigen's float erf: x clamped to [-4, 4] (erf is +-1 in float beyond), x p(x^2) / q(x^2) */
    float c = __builtin_fminf(__builtin_fmaxf(x, -4.0f), 4.0f);
    float x2 = c * c;
    float p = -2.72614225801306e-10f;
    p = __builtin_fmaf(x2, p, 2.77068142495902e-08f);
    p = __builtin_fmaf(x2, p, -2.10102402082508e-06f);
    p = __builtin_fmaf(x2, p, -5.69250639462346e-05f);
    p = __builtin_fmaf(x2, p, -7.34990630326855e-04f);
    p = __builtin_fmaf(x2, p, -2.95459980854025e-03f);
    p = __builtin_fmaf(x2, p, -1.60960333262415e-02f);
    float q = -1.45660718464996e-05f;
    q = __builtin_fmaf(x2, q, -2.13374055278905e-04f);
    q = __builtin_fmaf(x2, q, -1.68282697438203e-03f);
    q = __builtin_fmaf(x2, q, -7.37332916720468e-03f);
    q = __builtin_fmaf(x2, q, -1.42647390514189e-02f);
    float y = __builtin_fabsf(c) < 1e-30f ? c * (p / q) : c * p / q;   /* (c p) / q loses bits for denormal c */
    return x != x ? x : y;
}
"""


_OV = "static inline __attribute__((overloadable))"
_INT = ("char", "uchar", "short", "ushort", "int", "uint", "long", "ulong")
_ARITY = dict(_FLOAT_ONLY, min=2, max=2, clamp=3, mul_hi=2, mad=3, rsqrt=1, **{n: 1 for n in _POLY})
_NEEDS = {"tanh": ["exp"], "expm1": ["exp"], "log1p": ["log"], "clamp": ["min", "max"], "mad": ["fma"]}


def _fp64(lines):
    return ["#ifdef cl_khr_fp64"] + lines + ["#endif"]


# __cg_<name>f of _FLOAT_IMPL, by name
_IMPLS = {p[:p.index("f(")]: "static inline float __cg_" + p for p in _FLOAT_IMPL.split("static inline float __cg_")[1:]}


def _block(name):
    """The overloads of one function name (the #defines that route the name to them come last)."""
    ov = _OV
    ar = _ARITY[name]
    ps = ", ".join(f"{{t}} a{i}" for i in range(ar))
    xs = ", ".join(f"a{i}" for i in range(ar))

    def fallbacks(types):   # vector arguments: PoCL's builtin, reached through its own macro for the name
        return [f"{ov} {t}{w} __cg_{name}({ps.format(t=t + w)}) {{ return {name}({xs}); }}" for t in types
                for w in _VEC]
    if name in _FLOAT_ONLY:
        out = [f"{ov} float __cg_{name}({ps.format(t='float')}) {{ return __builtin_{name}f({xs}); }}"]
        out += fallbacks(["float"])
        dbl = [f"{ov} double __cg_{name}({ps.format(t='double')}) {{ return __builtin_{name}({xs}); }}"]
        dbl += fallbacks(["double"])
        if name in ("fmax", "fmin"):   # OpenCL's (gentype, scalar) forms
            out += [f"{ov} float{w} __cg_{name}(float{w} a0, float a1) {{ return {name}(a0, a1); }}" for w in _VEC]
            dbl += [f"{ov} double{w} __cg_{name}(double{w} a0, double a1) {{ return {name}(a0, a1); }}"
                    for w in _VEC]
        return out + _fp64(dbl)
    if name in _POLY:
        out = [_IMPLS[name], f"{ov} float __cg_{name}(float a0) {{ return __cg_{name}f(a0); }}"]
        return out + fallbacks(["float"]) + _fp64([f"{ov} double __cg_{name}(double a0) {{ return {name}(a0); }}"]
                                                  + fallbacks(["double"]))
    if name == "rsqrt":   # no clang builtin: 1 / sqrt, within 1 ulp (OpenCL allows 2)
        return ([f"{ov} float __cg_rsqrt(float a0) {{ return 1.0f / __builtin_sqrtf(a0); }}"] + fallbacks(["float"])
                + _fp64([f"{ov} double __cg_rsqrt(double a0) {{ return 1.0 / __builtin_sqrt(a0); }}"]
                        + fallbacks(["double"])))
    if name == "mad":
        return []   # mad(a, b, c) is routed to __cg_fma
    if name in ("min", "max", "clamp"):
        # scalars as compare-and-select, OpenCL's own definitions (max(x, y) = x < y ? y : x)
        body = {"min": "return y < x ? y : x;", "max": "return x < y ? y : x;",
                "clamp": "return __cg_min(__cg_max(x, lo), hi);"}[name]
        args = "({t} x, {t} lo, {t} hi)" if name == "clamp" else "({t} x, {t} y)"
        vargs = ["({v} x, {v} lo, {v} hi)", "({v} x, {t} lo, {t} hi)"] if name == "clamp" else \
            ["({v} x, {v} y)", "({v} x, {t} y)"]
        call = "(x, lo, hi)" if name == "clamp" else "(x, y)"
        out = []
        for t in _INT + ("float", "double"):
            lines = [f"{ov} {t} __cg_{name}{args.format(t=t)} {{ {body} }}"]
            lines += [f"{ov} {t}{w} __cg_{name}{a.format(v=t + w, t=t)} {{ return {name}{call}; }}"
                      for w in _VEC for a in vargs]
            out += _fp64(lines) if t == "double" else lines
        return out
    if name == "mul_hi":   # 32-bit scalars through a 64-bit product
        out = [f"{ov} {t} __cg_mul_hi({t} x, {t} y) {{ return ({t})((({wide})x * ({wide})y) >> 32); }}"
               for t, wide in (("int", "long"), ("uint", "ulong"))]
        out += [f"{ov} {t} __cg_mul_hi({t} x, {t} y) {{ return mul_hi(x, y); }}"
                for t in ("char", "uchar", "short", "ushort", "long", "ulong")]
        return out + [f"{ov} {t}{w} __cg_mul_hi({t}{w} x, {t}{w} y) {{ return mul_hi(x, y); }}"
                      for t in ("int", "uint") for w in _VEC]
    raise KeyError(name)


def prelude(names):
    """The prelude for these function names (with what they build on), in dependency order."""
    order = []

    def add(n):
        for d in _NEEDS.get(n, ()):
            add(d)
        if n not in order:
            order.append(n)
    for n in sorted(names):
        add(n)
    # 512-bit vector parameters (float16, double8/16) draw clang's "changes the ABI" warning on AVX2
    # targets; pyopencl would turn any build log into a CompilerWarning on every program
    out = _fp64(["#pragma OPENCL EXTENSION cl_khr_fp64 : enable"])
    out += ["#pragma clang diagnostic push", '#pragma clang diagnostic ignored "-Wpsabi"']
    for n in order:
        out += _block(n)
    for n in order:
        # PoCL's headers define each builtin's name as a macro (sqrt -> _cl_sqrt): the overloads above
        # reached its builtins through them; from here on the names mean ours
        xs = ", ".join(f"a{i}" for i in range(_ARITY[n]))
        out += [f"#undef {n}", f"#define {n}({xs}) __cg_{'fma' if n == 'mad' else n}({xs})"]
    out.append("#pragma clang diagnostic pop")
    return "\n".join(out) + "\n"


_CALL = re.compile(r"\b(" + "|".join(sorted(_ARITY, key=len, reverse=True)) + r")\s*\(")
_CACHE = {}


def wanted(device):
    """The prelude goes in front of programs for PoCL's CPU device (other drivers inline their builtins)."""
    if os.environ.get("CLGRAD_CPU_MATH", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return device.is_pocl_cpu


def with_prelude(src):
    """`src` with the prelude for the functions it calls, inserted after its leading extension pragmas (so
    they are enabled first) and before anything else (a program's FP_CONTRACT setting then applies to its
    own code only).  Only what a program calls: the whole set (~400 overloads) cost ~90 ms a build."""
    names = frozenset(_CALL.findall(src))
    if not names:
        return src
    pre = _CACHE.get(names)
    if pre is None:
        pre = _CACHE[names] = prelude(names)
    lines = src.split("\n")
    i = 0
    while i < len(lines) and (lines[i].startswith("#pragma OPENCL EXTENSION") or not lines[i].strip()):
        i += 1
    return "\n".join(lines[:i]) + "\n" + pre + "\n".join(lines[i:])
