"""DistributedDataParallel: one model replica per rank, gradients averaged over ranks in buckets.

How it works (PyTorch's Reducer, in Python):
  * construction: rank 0's parameters and buffers are broadcast to every rank (one coalesced
    broadcast per dtype), after checking that every rank has the same parameter shapes;
  * the parameters are grouped into buckets of ~`bucket_cap_mb` (the first one 1 MiB, so
    communication starts early), in reverse registration order: roughly the order in which
    backward produces their gradients;
  * each parameter has a post-accumulate-grad hook.  When backward has accumulated a
    parameter's .grad, the hook copies it (device to device) into its bucket's flat buffer;
    when a bucket is complete it goes to DDP's two communication threads, a pipeline: one copies
    it to a reused host buffer, the other all-reduces it (blocking MPI Allreduce, GIL released),
    while the main thread goes on enqueuing the earlier layers' backward kernels.  Buckets start in index order on every
    rank and travel on a communicator of their own, so all ranks issue the same collectives in
    the same order and never mix them with the user's.  Without MPI_THREAD_MULTIPLE (or with
    CLGRAD_DDP_COMM_THREAD=0) the main thread starts non-blocking Iallreduces instead and
    progresses them from the later hooks;
  * the hook that completes the last bucket waits for the buckets in order (against the process
    group's timeout), divides each by the world size and writes the averages back into each .grad
    while the later buckets are still travelling.  On a world of one, DDP does no communication.
    The engine's autograd has no `queue_callback`; the last parameter's hook is the end of the
    reduction, and by then every parameter gradient exists, so when `loss.backward()` returns,
    every .grad holds the average, exactly as with torch.

With find_unused_parameters=True, forward walks the output's graph; parameters it does not
reach count as ready at once (their slot holds their current .grad or zeros), and a small
"used" map is all-reduced with the last bucket so that a parameter no rank used keeps its .grad
untouched (as torch).  Without it, a parameter that gets no gradient leaves the reduction
unfinished, and the next forward raises torch's "Expected to have finished reduction" error.
"""
import contextlib

import numpy as np

from ... import autograd
from ...autograd.function import AccumulateGrad
from ...tensor import Tensor
from ..modules.module import Module

__all__ = ["DistributedDataParallel"]

_FIRST_BUCKET_BYTES = 1024 * 1024


def _dist():
    from ... import distributed
    return distributed


def _c10d():
    from ...distributed import distributed_c10d
    return distributed_c10d


class _Bucket:
    __slots__ = ("index", "indices", "params", "offsets", "dtype", "device", "numel", "flat", "host", "pending",
                 "work")

    def __init__(self, index, indices, params, dtype):
        self.index = index
        self.indices = indices  # positions in DDP's parameter list
        self.params = params
        self.dtype = dtype
        self.offsets = []
        n = 0
        for p in params:
            self.offsets.append(n)
            n += p.numel()
        self.numel = n
        self.device = params[0].device
        from ...ops.creation import zeros
        self.flat = zeros(n, dtype=dtype, device=self.device)
        self.host = None
        self.pending = len(params)
        self.work = None


def _assign_buckets(params, cap_bytes):
    """Buckets of parameter indices (into `params`), filled in reverse order and per (dtype, device)."""
    buckets = []
    open_ = {}
    first = True
    for i in reversed(range(len(params))):
        p = params[i]
        key = (p.dtype, p.device)
        cur = open_.setdefault(key, [[], 0])
        cur[0].append(i)
        cur[1] += p.numel() * p.dtype.itemsize
        limit = min(_FIRST_BUCKET_BYTES, cap_bytes) if first else cap_bytes
        if cur[1] >= limit:
            buckets.append(cur[0])
            del open_[key]
            first = False
    buckets.extend(v[0] for v in open_.values() if v[0])
    return buckets


def _copy_flat(dst_flat, dst_off, src):
    """dst_flat[dst_off : dst_off + src.numel()] <- src (flattened), on the device."""
    n = src.numel()
    if not n:
        return
    isz = src.dtype.itemsize
    if src.is_contiguous() and src.dtype is dst_flat.dtype and src._storage.device is dst_flat._storage.device:
        from ...runtime import launch as _launch
        _launch.copy_buffer(src._storage.device, src._storage.buf, dst_flat._storage.buf, n * isz,
                            src._offset * isz, (dst_flat._offset + dst_off) * isz)
    else:
        with autograd.no_grad():
            dst_flat[dst_off:dst_off + n].copy_(src.reshape(-1))


def _copy_out(dst, src_flat, src_off):
    """dst (any strides) <- src_flat[src_off : src_off + dst.numel()]."""
    n = dst.numel()
    if not n:
        return
    isz = dst.dtype.itemsize
    if dst.is_contiguous() and dst.dtype is src_flat.dtype and dst._storage.device is src_flat._storage.device:
        from ...runtime import launch as _launch
        _launch.copy_buffer(dst._storage.device, src_flat._storage.buf, dst._storage.buf, n * isz,
                            (src_flat._offset + src_off) * isz, dst._offset * isz)
        dst._storage.version += 1
    else:
        with autograd.no_grad():
            dst.copy_(src_flat[src_off:src_off + n].reshape(tuple(dst.shape)))


def _tensors_in(obj, out):
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _tensors_in(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _tensors_in(o, out)
    return out


def _reached_params(outputs):
    """ids of the leaf tensors whose AccumulateGrad node the outputs' graphs reach."""
    seen = set()
    stack = []
    for t in _tensors_in(outputs, []):
        if t.grad_fn is not None:
            stack.append(t.grad_fn)
        elif t.requires_grad:
            stack.append(None)
            seen.add(("leaf", id(t)))
    found = {k[1] for k in seen}
    nodes = set()
    while stack:
        n = stack.pop()
        if n is None or n in nodes:
            continue
        nodes.add(n)
        if type(n) is AccumulateGrad:
            found.add(id(n.variable))
            continue
        for nx, _ in n.next_functions:
            if nx is not None and nx not in nodes:
                stack.append(nx)
    return found


class DistributedDataParallel(Module):
    """Data parallelism over the ranks of engine.distributed (torch.nn.parallel.DistributedDataParallel).

        dist.init_process_group("mpi")
        model = DistributedDataParallel(Net().to(engine.get_default_device()))
        loss_fn(model(x_local), y_local).backward()   # .grad = average over ranks
        opt.step()

    Each rank feeds its own share of the global batch; after backward every rank holds the same
    averaged gradients, so identical optimizer steps keep the replicas identical.
    `device_ids`/`output_device` are accepted for compatibility (the module stays where it is:
    init_process_group already made the rank's device the default one).
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False, init_sync=True, **unsupported):
        super().__init__()
        if unsupported:
            raise TypeError(f"DistributedDataParallel got unsupported arguments {sorted(unsupported)}")
        c10d = _c10d()
        self.process_group = c10d._group(process_group)
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel expects an nn.Module, got {type(module).__name__}")
        self.module = module
        self.device_ids = device_ids
        self.output_device = output_device
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self.bucket_bytes_cap = int((25 if bucket_cap_mb is None else bucket_cap_mb) * 1024 * 1024)
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any parameter that "
                               "requires a gradient.")
        devs = {p._storage.device for _, p in named}
        if len(devs) > 1:
            raise ValueError("DistributedDataParallel's input module must be on the same type of devices, but input "
                             f"module parameters locate in {sorted(str(d) for d in devs)}; put the whole replica on "
                             "one device")
        self._param_names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._module_buffers = [b for _, b in module.named_buffers()]
        self._verify_shapes()
        if init_sync:
            self._sync_params_and_buffers()
        self._buckets = [_Bucket(k, idx, [self._params[i] for i in idx], self._params[idx[0]].dtype)
                         for k, idx in enumerate(_assign_buckets(self._params, self.bucket_bytes_cap))]
        self._where = {}  # param index -> (bucket, slot)
        for b in self._buckets:
            for j, i in enumerate(b.indices):
                self._where[i] = (b, j)
        self._marked = [False] * len(self._params)
        self._used = np.zeros(len(self._params), dtype=np.int32)
        self._expect_hooks = False
        self._next_bucket = 0
        self._num_marked = 0
        self._launch_log = []  # (bucket index, parameters marked ready when it started): overlap, for tests
        # gradients travel on a communicator of their own, so the ordering of DDP's all-reduces (issued by the
        # communication thread, bucket after bucket) never interleaves with the user's collectives
        self._grad_comm = self.process_group.comm.Dup()
        self._comm_thread = None
        if self.process_group.size() > 1 and _use_comm_thread():
            self._comm_thread = _CommThread(self.process_group, self._grad_comm)
        self._hook_handles = [p.register_post_accumulate_grad_hook(self._make_hook(i))
                              for i, p in enumerate(self._params)]

    # ---- construction ------------------------------------------------------------------------
    def _verify_shapes(self):
        c10d = _c10d()
        mine = c10d._signature((tuple(p.shape), str(p.dtype)) for p in self._params)
        everyone = [None] * self.process_group.size()
        c10d.all_gather_object(everyone, (mine, len(self._params)))
        if any(e != everyone[0] for e in everyone):
            bad = [r for r, e in enumerate(everyone) if e != everyone[0]]
            raise RuntimeError(f"DDP expects the same model on every rank, but the parameter shapes/dtypes of rank(s) "
                               f"{bad} differ from rank 0's (this rank has {len(self._params)} parameters). Build the "
                               "same model everywhere before wrapping it.")

    def _sync_params_and_buffers(self):
        with autograd.no_grad():
            _broadcast_coalesced(self.process_group, [p for p in self.module.parameters()] + self._module_buffers, 0)

    # ---- forward ---------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        if self._expect_hooks and self._num_marked:
            self._unfinished_error()
        self._reset()
        if (self.require_forward_param_sync and self.broadcast_buffers and self._module_buffers
                and self.process_group.size() > 1):
            with autograd.no_grad():
                _broadcast_coalesced(self.process_group, self._module_buffers, 0)
        out = self.module(*inputs, **kwargs)
        if autograd.is_grad_enabled() and self.require_backward_grad_sync and self.process_group.size() > 1:
            self._expect_hooks = True
            if self.find_unused_parameters:
                reached = _reached_params(out)
                for i, p in enumerate(self._params):
                    if id(p) not in reached:
                        self._mark_ready(i, used=False)
                self._launch_ready()
        return out

    def _reset(self):
        self._expect_hooks = False
        self._marked = [False] * len(self._params)
        self._used[:] = 0
        self._num_marked = 0
        self._next_bucket = 0
        self._launch_log = []
        for b in self._buckets:
            b.pending = len(b.params)
            b.work = None
            if self._comm_thread is None:
                b.host = None

    def _unfinished_error(self):
        missing = [n for n, m in zip(self._param_names, self._marked) if not m]
        raise RuntimeError(
            "Expected to have finished reduction in the prior iteration before starting a new one. This error "
            "indicates that your module has parameters that were not used in producing loss. You can enable unused "
            "parameter detection by passing the keyword argument `find_unused_parameters=True` to "
            "`DistributedDataParallel`, and by making sure all `forward` function outputs participate in calculating "
            f"loss. Parameters that did not receive a gradient on rank {self.process_group.rank()}: "
            f"{', '.join(missing)}")

    # ---- backward: hooks, buckets, reduction ----------------------------------------------------
    def _make_hook(self, i):
        def hook(p):
            if self._expect_hooks:
                self._mark_ready(i, used=True)
                self._launch_ready()
        return hook

    def _mark_ready(self, i, used):
        if self._marked[i]:
            if used and not self._used[i] and self.find_unused_parameters:
                raise RuntimeError(
                    f"parameter {self._param_names[i]} was found unused in forward (find_unused_parameters=True) "
                    "but got a gradient in backward; make every forward output that depends on it part of the "
                    "returned value")
            raise RuntimeError(
                f"Expected to mark a variable ready only once. Parameter {self._param_names[i]} got a gradient twice "
                "in one iteration (backward called twice after one forward, or a reentrant backward); use no_sync() "
                "for all but the last backward")
        self._marked[i] = True
        self._num_marked += 1
        if used:
            self._used[i] = 1
        b, j = self._where[i]
        p = self._params[i]
        if p.grad is not None:
            _copy_flat(b.flat, b.offsets[j], p.grad)
        else:
            from ...runtime import launch as _launch
            isz = p.dtype.itemsize
            _launch.fill_buffer(b.device.runtime, b.flat._storage.buf, np.zeros(1, np.uint8),
                                (b.flat._offset + b.offsets[j]) * isz, p.numel() * isz)
        b.pending -= 1

    def _launch_ready(self):
        c10d = _c10d()
        pg = self.process_group
        buckets = self._buckets
        while self._next_bucket < len(buckets) and buckets[self._next_bucket].pending == 0:
            b = buckets[self._next_bucket]
            what = f"DDP gradient all_reduce (bucket {b.index} of {len(buckets)}, {b.numel} {b.dtype} values)"
            pg.seq += 1
            if self._comm_thread is not None:
                b.work = self._comm_thread.submit(b, what)
            else:
                MPI = c10d._mpi()
                b.host = c10d.to_host(b.flat, c10d._wire_dtype(b.dtype))  # waits for this bucket's gradients
                req = self._grad_comm.Iallreduce(MPI.IN_PLACE, b.host, op=MPI.SUM)
                b.work = c10d.Work(pg, what, [req], None, (b.host,))
            self._launch_log.append((b.index, self._num_marked))
            self._next_bucket += 1
        if self._comm_thread is None:
            # let MPI progress the reductions in flight while backward goes on
            for b in buckets[:self._next_bucket]:
                if b.work is not None and not b.work._done:
                    b.work.is_completed()
        if self._next_bucket == len(buckets) and self._expect_hooks:
            self._finalize()

    def _finalize(self):
        c10d = _c10d()
        MPI = c10d._mpi()
        pg = self.process_group
        world = pg.size()
        used = None
        if self.find_unused_parameters:
            for b in self._buckets:
                b.work.wait()
            # the communication threads are idle now: the main thread may use their communicator
            used = self._used.copy()
            req = self._grad_comm.Iallreduce(MPI.IN_PLACE, used, op=MPI.MAX)
            pg.seq += 1
            c10d.Work(pg, "DDP unused-parameter map all_reduce", [req], None, (used,)).wait()
        for b in self._buckets:
            b.work.wait()  # later buckets are still travelling while this one goes back to the device
            b.host /= world
            c10d.from_host(b.flat, b.host)
            for j, (i, p) in enumerate(zip(b.indices, b.params)):
                if used is not None and not used[i]:
                    continue  # no rank used it: leave .grad as it is
                if p.grad is None:
                    with autograd.no_grad():
                        p.grad = b.flat[b.offsets[j]:b.offsets[j] + p.numel()].reshape(tuple(p.shape)).clone()
                else:
                    _copy_out(p.grad, b.flat, b.offsets[j])
            if self._comm_thread is None:
                b.host = None
            b.work = None
        self._expect_hooks = False
        self._num_marked = 0

    def __del__(self):
        t = self.__dict__.get("_comm_thread")
        if t is not None:
            t.stop()

    # ---- torch's API -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes of forwards run inside accumulate .grad locally without communication;
        the first backward outside reduces the accumulated gradients."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def join(self, *args, **kwargs):
        raise NotImplementedError("DistributedDataParallel.join (uneven inputs) is not supported: give every rank "
                                  "the same number of batches (DistributedSampler does, with drop_last or padding)")

    def register_comm_hook(self, state, hook):
        raise NotImplementedError("DistributedDataParallel.register_comm_hook is not supported; gradients are "
                                  "averaged with MPI all-reduce")

    def _get_bucket_layout(self):
        """[[parameter names of bucket 0], ...] (bucket 0 is reduced first)."""
        return [[self._param_names[i] for i in b.indices] for b in self._buckets]

    def extra_repr(self):
        return ""


def _use_comm_thread():
    """A communication thread needs MPI_THREAD_MULTIPLE (mpi4py asks for it by default);
    CLGRAD_DDP_COMM_THREAD=0 falls back to non-blocking all-reduces progressed from the hooks."""
    import os
    if os.environ.get("CLGRAD_DDP_COMM_THREAD", "1") == "0":
        return False
    MPI = _c10d()._mpi()
    return MPI.Query_thread() == MPI.THREAD_MULTIPLE


class _ThreadWork:
    """A bucket handed to the communication thread; wait() honours the process group's timeout."""

    def __init__(self, pg, what, event):
        import time
        self._pg = pg
        self._what = what
        self._event = event
        self._t0 = time.monotonic()
        self._deadline = self._t0 + pg.timeout
        self._seq = pg.seq
        self.error = None
        self._done = False

    def is_completed(self):
        return self._event.is_set()

    def wait(self):
        import time
        if not self._event.wait(max(0.0, self._deadline - time.monotonic())):
            c10d = _c10d()
            w = c10d.Work(self._pg, self._what, [])
            w._t0, w._seq = self._t0, self._seq
            w._timed_out(time.monotonic())
        if self.error is not None:
            msg = f"rank {self._pg.rank()}: {self._what} failed: {self.error!r}"
            self._pg.broken = msg
            raise _c10d().DistBackendError(msg) from self.error
        self._done = True
        return True


class _CommThread:
    """Two daemon threads per DDP, a pipeline over the buckets in the order the hooks hand them over:
    the copier copies a bucket's flat gradient buffer to its (reused) host buffer (the in-order device
    queue makes that wait for the bucket's gradients, never the main thread), the reducer runs a
    blocking MPI Allreduce on it, which keeps MPI progressing at full speed; so bucket k+1 crosses to
    the host while bucket k is reduced, and both while the main thread goes on enqueuing backward
    kernels.  pyopencl and mpi4py release the GIL while they block."""

    def __init__(self, pg, comm):
        import queue
        import threading
        self.pg = pg
        self.comm = comm
        self.q_copy = queue.SimpleQueue()
        self.q_reduce = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._copier, name="clgrad-ddp-copy", daemon=True),
                        threading.Thread(target=self._reducer, name="clgrad-ddp-comm", daemon=True)]
        for t in self.threads:
            t.start()

    def submit(self, b, what):
        import threading
        w = _ThreadWork(self.pg, what, threading.Event())
        self.q_copy.put((b, w))
        return w

    def stop(self):
        self.q_copy.put(None)

    def _copier(self):
        c10d = _c10d()
        from ...runtime import launch as _launch
        while True:
            item = self.q_copy.get()
            if item is None:
                self.q_reduce.put(None)
                return
            b, w = item
            try:
                wire = c10d._wire_dtype(b.dtype)
                if b.host is None or b.host.dtype != wire:
                    b.host = np.empty(b.numel, dtype=wire)  # kept: no page faults on later steps
                if wire == np.dtype(b.dtype.np):
                    if b.numel:
                        _launch.copy_to_host(b.flat._storage.device, b.flat._storage.buf,
                                             b.flat._offset * b.dtype.itemsize, b.host)
                else:
                    b.host[:] = c10d.to_host(b.flat, wire)
            except BaseException as e:  # noqa: BLE001  (reported to the main thread by wait())
                w.error = e
            self.q_reduce.put((b, w))

    def _reducer(self):
        MPI = _c10d()._mpi()
        while True:
            item = self.q_reduce.get()
            if item is None:
                return
            b, w = item
            try:
                if w.error is None:
                    self.comm.Allreduce(MPI.IN_PLACE, b.host, op=MPI.SUM)
            except BaseException as e:  # noqa: BLE001
                w.error = e
            finally:
                w._event.set()


def _broadcast_coalesced(pg, tensors, src):
    """Broadcast many tensors from `src` with one MPI broadcast per dtype."""
    c10d = _c10d()
    groups = {}
    for t in tensors:
        if t is not None and t.numel():
            groups.setdefault(np.dtype(t.dtype.np), []).append(t)
    for dt, ts in groups.items():
        n = sum(t.numel() for t in ts)
        if pg.rank() == src:
            buf = np.concatenate([c10d.to_host(t) for t in ts])
        else:
            buf = np.empty(n, dtype=dt)
        req = pg.comm.Ibcast(buf.view(np.uint8), root=src)
        pg.seq += 1
        c10d.Work(pg, f"DDP broadcast of {len(ts)} {dt} parameters/buffers from rank {src}", [req], None,
                  (buf,)).wait()
        if pg.rank() != src:
            off = 0
            for t in ts:
                c10d.from_host(t, buf[off:off + t.numel()])
                off += t.numel()
