"""Record the command stream of one traced call, and replay it (the runtime half of engine.compile).

While a Recorder is active (`launch._REC[0]`), every kernel launch, host-side step (`host_call`),
upload, fill and device copy is appended to `steps` as well as executed.  Buffers become *slots*:
every allocation from a device pool during the trace is a new slot (so a pooled buffer reused for
a second tensor is a second slot), the call's inputs are slots, and any other buffer (parameters,
module buffers) is a constant the plan keeps by reference.

A `Plan` replays a step list against an environment `env` (slot -> cl.Buffer): it allocates each
slot the plan owns just before its first use and returns it to the pool after its last use (memory
reuse by liveness), except the slots that must outlive the plan (its outputs).  Replay does per
step only what is necessary: substitute buffers into a prepared argument list, set the arguments
and enqueue.

Reads back to the host during a trace make it data-dependent (`reason`), because the Python code
may branch on the value.  Index bounds checks are the exception: they are recorded as `check` steps
and, on replay, deferred to the next host read (`launch.copy_to_host`), as CUDA reports a
device-side assert at the next synchronisation.
"""
import sys
import traceback

import numpy as np
import pyopencl as cl

from . import launch as _launch
from .memory import Storage

_MEM = cl.MemoryObject


class SlotRef:
    """Stands in for a buffer when steps are generated without running them (fused kernels)."""
    __slots__ = ("slot",)

    def __init__(self, slot):
        self.slot = slot


class BufRef:
    """A Storage look-alike (`.buf`, `.size`, `.device`) handed to host steps on replay."""
    __slots__ = ("buf", "size", "device")

    def __init__(self, buf, size, device):
        self.buf, self.size, self.device = buf, size, device


class Step:
    """kind: 'k' kernel launch, 'host' host call, 'up' upload, 'fill', 'copy', 'check'.
    `tpl` is the argument list with None where `subs` [(position, slot)] put a slot's buffer;
    `ew` the elementwise description when the launch came from runtime/elementwise.py, `gemm` the
    tiled GEMM's generator parameters when it came from runtime/matmul.py (epilogue fusion)."""
    __slots__ = ("kind", "device", "fn", "tpl", "subs", "name", "extra", "ew", "rng", "fused", "gemm")

    def __init__(self, kind, device, fn, tpl, subs, name, extra=None, ew=None, rng=None, gemm=None):
        self.kind, self.device, self.fn, self.tpl, self.subs = kind, device, fn, tpl, subs
        self.name, self.extra, self.ew, self.rng, self.gemm = name, extra, ew, rng, gemm
        self.fused = None  # names of the ops a fused step replaced

    def slots(self):
        return [s for _, s in self.subs]

    def __repr__(self):
        fused = f" fused[{' + '.join(self.fused)}]" if self.fused else ""
        return f"<{self.kind} {self.name}{fused} slots={self.slots()}>"


def _user_frame():
    """'file:line' of the innermost frame outside the engine (where user code read a value)."""
    for fr in reversed(traceback.extract_stack()[:-2]):
        f = fr.filename.replace("\\", "/")
        if "/engine/" not in f and "/runtime/" not in f:
            return f"{fr.filename}:{fr.lineno} ({fr.line})"
    return "?"


class Recorder:
    def __init__(self):
        self.steps = []
        self.key_of = {}        # id(cl.Buffer) -> current slot of that buffer
        self.keep = []          # every buffer seen: alive during the trace so ids stay unique
        self.slot_size = []     # pool size (bytes) of each slot
        self.slot_dev = []      # device of each slot
        self.slot_kind = []     # "in" (call input), "tmp" (allocated during the trace), "gin" (grad input)
        self.alive = set()      # tmp slots whose Storage still exists
        self.reason = None      # why replaying would be wrong (data-dependent), or None
        self.capture_only = False
        self._ew = None
        self._rng = None
        self._gemm = None
        self._pools = []
        self._prev = None

    # ---- slots -----------------------------------------------------------------------------------
    def new_slot(self, buf, size, device, kind):
        s = len(self.slot_size)
        self.slot_size.append(size)
        self.slot_dev.append(device)
        self.slot_kind.append(kind)
        if buf is not None:
            self.key_of[id(buf)] = s
            self.keep.append(buf)
        return s

    def input_slot(self, storage):
        s = self.key_of.get(id(storage.buf))
        if s is None:
            s = self.new_slot(storage.buf, storage.size, storage.device, "in")
        return s

    def slot_of(self, buf):
        return self.key_of.get(id(buf))

    def _ref(self, a, tpl, subs, i):
        if isinstance(a, SlotRef):
            subs.append((i, a.slot))
            tpl[i] = None
        elif isinstance(a, _MEM):
            s = self.key_of.get(id(a))
            if s is not None:
                subs.append((i, s))
                tpl[i] = None
            else:
                self.keep.append(a)

    # ---- activation ------------------------------------------------------------------------------
    def start(self, devices):
        if _launch._REC[0] is not None:
            raise RuntimeError("internal: nested command-stream recording")
        for d in devices:
            pool = d.pool
            orig_alloc, orig_release = pool.alloc, pool.release

            def alloc(nbytes, _orig=orig_alloc, _d=d):
                buf, size = _orig(nbytes)
                self.alive.add(self.new_slot(buf, size, _d, "tmp"))
                return buf, size

            def release(buf, size, _orig=orig_release):
                s = self.key_of.get(id(buf))
                if s is not None:
                    self.alive.discard(s)
                _orig(buf, size)
            pool.alloc, pool.release = alloc, release
            self._pools.append(pool)
        _launch._REC[0] = self

    def stop(self):
        _launch._REC[0] = None
        for pool in self._pools:
            for attr in ("alloc", "release"):
                if attr in pool.__dict__:
                    del pool.__dict__[attr]
        self._pools = []

    def _suspended(self, fn, *args):
        _launch._REC[0] = None
        try:
            return fn(*args)
        finally:
            _launch._REC[0] = self

    # ---- hooks called by runtime/launch.py and the kernel generators ------------------------------
    def ew_begin(self, info):
        self._ew = info

    def ew_end(self):
        self._ew = None

    def note_rng(self, reserve):
        """The next launch draws random numbers: on replay `reserve()` gives fresh (seed, offset)."""
        self._rng = reserve

    def note_gemm(self, info):
        """The next launch is a whole tiled GEMM with these generator parameters (runtime/matmul.py)."""
        self._gemm = info

    def launch(self, device, kernel, gsize, lsize, args, name, offset, nbytes):
        tpl = list(args)
        subs = []
        for i, a in enumerate(args):
            self._ref(a, tpl, subs, i)
        self.steps.append(Step("k", device, kernel, tpl, subs, name or kernel.function_name,
                               (tuple(gsize), None if lsize is None else tuple(lsize), offset, nbytes),
                               self._ew, self._rng, self._gemm))
        self._rng = self._gemm = None
        if self.capture_only:
            return None
        return self._suspended(_launch.launch, device, kernel, gsize, lsize, args, name, offset, nbytes)

    def host_call(self, device, fn, args, name):
        self.steps.append(Step("host", device, fn, self._tree(args), None, name))
        return self._suspended(fn, *args)

    def _tree(self, a):
        """args with Storages/buffers of slots replaced by SlotRef (host steps' argument trees)."""
        if isinstance(a, tuple):
            return tuple(self._tree(x) for x in a)
        if isinstance(a, list):
            return [self._tree(x) for x in a]
        if isinstance(a, Storage) or isinstance(a, _MEM):
            buf = a.buf if isinstance(a, Storage) else a
            s = self.key_of.get(id(buf))
            if s is not None:
                return SlotRef(s)
            self.keep.append(a)
        return a

    def upload(self, device, buf, offset, host):
        tpl, subs = [buf], []
        self._ref(buf, tpl, subs, 0)
        self.steps.append(Step("up", device, None, tpl, subs, "memcpy_htod",
                               (offset, np.array(host, copy=True))))

    def fill(self, device, buf, pattern, offset, nbytes):
        tpl, subs = [buf], []
        self._ref(buf, tpl, subs, 0)
        self.steps.append(Step("fill", device, None, tpl, subs, "memset", (np.array(pattern, copy=True),
                                                                           offset, nbytes)))

    def copy(self, device, src, dst, nbytes, src_off, dst_off):
        tpl, subs = [src, dst], []
        self._ref(src, tpl, subs, 0)
        self._ref(dst, tpl, subs, 1)
        self.steps.append(Step("copy", device, None, tpl, subs, "memcpy_dtod", (nbytes, src_off, dst_off)))

    def check(self, device, read, message):
        self.steps.append(Step("check", device, read, [], [], "index_check", message))
        return self._suspended(read)

    def host_read(self, device, buf):
        if self.reason is None:
            self.reason = f"a tensor's value was read on the host (data-dependent Python) at {_user_frame()}"


# ---- replay ---------------------------------------------------------------------------------------
class Plan:
    """A step list with its slot lifetimes.  `owned`: slots the plan allocates (created by the
    steps it replays); `keep`: owned slots that must survive the plan (outputs, saved values)."""

    def __init__(self, steps, rec, owned, keep):
        self.steps = steps
        self.rec = rec
        n = len(steps)
        first, last = {}, {}
        for i, st in enumerate(steps):
            for s in _step_slots(st):
                if s in owned:
                    first.setdefault(s, i)
                    last[s] = i
        self.alloc_at = [[] for _ in range(n + 1)]
        self.free_at = [[] for _ in range(n)]
        for s in owned:
            if s in first:
                self.alloc_at[first[s]].append(s)
                if s not in keep:
                    self.free_at[last[s]].append(s)
            elif s in keep:   # an output no step writes (e.g. empty): allocate at the end
                self.alloc_at[n].append(s)

    def run(self, env, held):
        """Replay into env (list slot -> buffer); held[s] keeps the Storage of each owned slot."""
        rec = self.rec
        sizes, devs = rec.slot_size, rec.slot_dev
        alloc_at, free_at = self.alloc_at, self.free_at
        launch = _launch.launch
        for i, st in enumerate(self.steps):
            for s in alloc_at[i]:
                sto = Storage(devs[s], sizes[s])
                held[s] = sto
                env[s] = sto.buf
            kind = st.kind
            if kind == "k":
                args = st.tpl.copy()
                for p, s in st.subs:
                    args[p] = env[s]
                if st.rng is not None:
                    seed, off = st.rng()
                    args[3] = np.uint64(int(off) & 0xFFFFFFFFFFFFFFFF)
                    args[6] = np.uint32(seed & 0xFFFFFFFF)
                    args[7] = np.uint32((seed >> 32) & 0xFFFFFFFF)
                g, lsz, off, nb = st.extra
                launch(st.device, st.fn, g, lsz, args, st.name, off, nb)
            else:
                _run_other(st, env, sizes, devs)
            for s in free_at[i]:
                held[s] = None
                env[s] = None
        for s in alloc_at[len(self.steps)]:
            sto = Storage(devs[s], sizes[s])
            held[s] = sto
            env[s] = sto.buf


def _step_slots(st):
    if st.kind == "host":
        out = []
        _tree_slots(st.tpl, out)
        return out
    return [s for _, s in st.subs]


def _tree_slots(a, out):
    if isinstance(a, (tuple, list)):
        for x in a:
            _tree_slots(x, out)
    elif isinstance(a, SlotRef):
        out.append(a.slot)


def _bind(a, env, sizes, devs):
    if isinstance(a, tuple):
        return tuple(_bind(x, env, sizes, devs) for x in a)
    if isinstance(a, list):
        return [_bind(x, env, sizes, devs) for x in a]
    if isinstance(a, SlotRef):
        return BufRef(env[a.slot], sizes[a.slot], devs[a.slot])
    return a


def _run_other(st, env, sizes, devs):
    kind = st.kind
    if kind == "host":
        st.fn(*_bind(st.tpl, env, sizes, devs))
        return
    args = st.tpl.copy()
    for p, s in st.subs:
        args[p] = env[s]
    q = st.device.queue
    if kind == "up":
        off, host = st.extra
        cl.enqueue_copy(q, args[0], host, dst_offset=off, is_blocking=False)
    elif kind == "fill":
        pattern, off, nbytes = st.extra
        _launch.fill_buffer(st.device, args[0], pattern, off, nbytes)
    elif kind == "copy":
        nbytes, so, do = st.extra
        _launch.copy_buffer(st.device, args[0], args[1], nbytes, so, do)
    elif kind == "check":
        _launch.defer_check(st.device, st.fn, st.extra)
    else:  # pragma: no cover
        raise RuntimeError(f"internal: unknown step kind {kind!r}")


def dump(steps, file=None, title="steps"):
    file = file or sys.stderr
    print(f"[clgrad] {title}: {len(steps)}", file=file)
    for i, st in enumerate(steps):
        print(f"[clgrad]   {i:4d} {st!r}", file=file)
