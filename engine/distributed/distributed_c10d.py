"""The process group and the collectives (torch.distributed's names) on MPI through mpi4py.

Every collective copies the tensor to a host numpy array, hands that buffer to one of MPI's
non-blocking collectives (Iallreduce, Ibcast, Iallgather, Ireduce_scatter_block, ...; never
pickle) and writes the result back into the tensor on its device.  `async_op=True` returns a
`Work` at once; `wait()` completes it.  Blocking calls are the same thing followed by `wait()`.

Timeouts.  MPI's own waits block forever when a peer stops answering, so every wait here polls
the requests (`MPI.Request.Testall`) against a deadline (`timeout=` of init_process_group,
default 30 minutes as torch, or CLGRAD_DIST_TIMEOUT seconds).  Past it the call raises
`DistTimeoutError` ("rank 0 timed out after 5.0s in all_reduce ...").  A timed-out collective
cannot be cancelled, so the group is broken from then on: every later collective raises, and
when the process exits it calls MPI_Abort (a plain MPI_Finalize would wait for the missing
rank forever), which makes the launcher (mpirun) kill the other ranks too.  An uncaught
exception on any rank also aborts the whole job (after printing its traceback), so one rank's
error never leaves the others waiting; `init_process_group(abort_on_exception=False)` or
CLGRAD_DIST_ABORT_ON_EXCEPTION=0 turns that off.  A rank killed by a signal is noticed by
mpirun (MPICH's hydra), which kills the others at once ("BAD TERMINATION ... EXIT CODE: 9").
"""
import atexit
import datetime
import os
import pickle
import sys
import time
import zlib

import numpy as np

__all__ = ["Backend", "DistBackendError", "DistError", "DistTimeoutError", "GroupMember", "ProcessGroup",
           "ReduceOp", "Work", "all_gather", "all_gather_into_tensor", "all_gather_object", "all_reduce",
           "barrier", "broadcast", "broadcast_object_list", "destroy_process_group", "gather",
           "get_backend", "get_node_local_rank", "get_rank", "get_world_size", "init_process_group",
           "irecv", "is_available", "is_initialized", "is_mpi_available", "isend", "recv", "reduce",
           "reduce_scatter", "reduce_scatter_tensor", "scatter", "send", "default_pg_timeout"]

default_pg_timeout = datetime.timedelta(minutes=30)


class DistError(RuntimeError):
    """Base of engine.distributed's errors (torch.distributed.DistError)."""


class DistBackendError(DistError):
    """The communication backend (MPI) failed."""


class DistTimeoutError(DistBackendError):
    """A collective did not complete within the process group's timeout."""


for _cls in (DistError, DistBackendError, DistTimeoutError):
    _cls.__module__ = "engine.distributed"


class Backend(str):
    """Backend names.  Only MPI exists; 'gloo' and 'nccl' are accepted as aliases of it so torch
    scripts run unchanged (they get MPI over host buffers)."""
    MPI = "mpi"
    GLOO = "gloo"
    NCCL = "nccl"
    UNDEFINED = "undefined"

    def __new__(cls, name):
        return str.__new__(cls, str(name).lower())


class _RedOp:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<RedOpType.{self.name}: {self.name}>"

    def __reduce__(self):
        return (getattr, (ReduceOp, self.name))


class ReduceOp:
    """Reduction operations: SUM, AVG, PRODUCT, MIN, MAX (torch.distributed.ReduceOp)."""
    SUM = _RedOp("SUM")
    AVG = _RedOp("AVG")
    PRODUCT = _RedOp("PRODUCT")
    MIN = _RedOp("MIN")
    MAX = _RedOp("MAX")
    RedOpType = _RedOp


_MPI = None


def _mpi():
    """mpi4py's MPI module (importing it initialises MPI, so it happens only on first use)."""
    global _MPI
    if _MPI is None:
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise RuntimeError("engine.distributed needs mpi4py and an MPI library: pip install 'clgrad[distributed]' "
                               "(mpi4py and the mpich wheel), or pip install mpi4py against your cluster's MPI"
                               ) from e
        _MPI = MPI
    return _MPI


def is_available():
    """True when mpi4py can be imported (MPI itself is initialised only by init_process_group)."""
    import importlib.util
    return importlib.util.find_spec("mpi4py") is not None


is_mpi_available = is_available


class ProcessGroup:
    """The world of ranks: a duplicate of MPI.COMM_WORLD (so our traffic never mixes with the
    user's own MPI calls), the timeout, and the collective counter used in error messages."""

    def __init__(self, comm, timeout, backend):
        self.comm = comm
        self.timeout = timeout
        self.backend = backend
        self.seq = 0
        self.broken = None  # the error message once a collective timed out
        self._rank = comm.Get_rank()
        self._size = comm.Get_size()

    def rank(self):
        return self._rank

    def size(self):
        return self._size

    def name(self):
        return self.backend

    def __repr__(self):
        return f"<ProcessGroup backend={self.backend} rank={self._rank} size={self._size}>"


class GroupMember:
    WORLD = None  # the default group once init_process_group ran
    NON_GROUP_MEMBER = object()


class _State:
    pg = None
    local_rank = 0
    local_size = 1
    atexit_done = False
    prev_excepthook = None


_state = _State()


def _env_timeout():
    v = os.environ.get("CLGRAD_DIST_TIMEOUT")
    return float(v) if v else None


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None, abort_on_exception=None):
    """Join the job that mpirun (or `python -m engine.distributed.run`) started.

    Ranks and world size come from MPI; `rank=`/`world_size=`, when given, must agree with it.
    `timeout` (a datetime.timedelta or seconds) bounds every collective; CLGRAD_DIST_TIMEOUT
    (seconds) overrides the default of 30 minutes.  Each rank then uses one OpenCL device, chosen
    from its node-local rank: the GPUs round-robin when the node has any, else the CPU device
    (`device_id=` picks one explicitly; CLGRAD_DEVICE set in the environment is respected).
    """
    if _state.pg is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    name = str(backend if backend is not None else "mpi").lower()
    if not all(part.split(":")[-1] in ("mpi", "gloo", "nccl") for part in name.split(",")):
        raise ValueError(f"Invalid backend: {backend!r}; engine.distributed has only the 'mpi' backend "
                         "('gloo' and 'nccl' are accepted as aliases of it)")
    if init_method not in (None, "env://") and not str(init_method).startswith(("env://", "mpi://")):
        raise ValueError(f"init_method={init_method!r} is not supported: MPI's launcher (mpirun) sets up the job")
    if store is not None:
        raise ValueError("store= is not supported: MPI's launcher (mpirun) sets up the job")
    MPI = _mpi()
    world = MPI.COMM_WORLD
    if world_size not in (-1, None) and int(world_size) != world.Get_size():
        raise ValueError(f"world_size={world_size} but MPI started {world.Get_size()} processes; launch with "
                         f"`mpirun -n {world_size} ...` or leave world_size out")
    if rank not in (-1, None) and int(rank) != world.Get_rank():
        raise ValueError(f"rank={rank} but MPI says this process is rank {world.Get_rank()}; leave rank out")
    secs = _env_timeout()
    if secs is None:
        t = default_pg_timeout if timeout is None else timeout
        secs = t.total_seconds() if isinstance(t, datetime.timedelta) else float(t)
    if not secs > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    _check_launcher_agrees(MPI, world)
    comm = world.Dup()
    pg = ProcessGroup(comm, secs, Backend.MPI)
    local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    _state.local_rank, _state.local_size = local.Get_rank(), local.Get_size()
    local.Free()
    _state.pg = pg
    GroupMember.WORLD = pg
    os.environ.setdefault("RANK", str(pg.rank()))
    os.environ.setdefault("WORLD_SIZE", str(pg.size()))
    os.environ.setdefault("LOCAL_RANK", str(_state.local_rank))
    os.environ.setdefault("LOCAL_WORLD_SIZE", str(_state.local_size))
    _pick_device(device_id)
    if not _state.atexit_done:
        atexit.register(_at_exit)
        _state.atexit_done = True
    if abort_on_exception is None:
        abort_on_exception = os.environ.get("CLGRAD_DIST_ABORT_ON_EXCEPTION", "1") != "0"
    if abort_on_exception and pg.size() > 1 and _state.prev_excepthook is None:
        _state.prev_excepthook = sys.excepthook
        sys.excepthook = _excepthook


_LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def _check_launcher_agrees(MPI, world):
    """mpirun of one MPI with mpi4py loading another gives N separate worlds of 1 that would train
    N unrelated models without a word: refuse that."""
    if world.Get_size() != 1:
        return
    for k in _LAUNCHER_SIZE:
        v = os.environ.get(k, "")
        if v.isdigit() and int(v) > 1:
            lib = MPI.Get_library_version().split("\n")[0].strip("\x00 ")
            raise RuntimeError(
                f"the launcher started {v} processes ({k}={v}) but MPI in this process sees a world of 1: mpirun and "
                f"the MPI library mpi4py loaded ({lib}) are different MPI implementations. Use the mpirun of the "
                "same MPI, or point mpi4py at the launcher's library, e.g. "
                "MPI4PY_LIBMPI=/path/to/mpich/lib/libmpi.so.12 (MPICH's mpirun sets PMI_SIZE; Open MPI's sets OMPI_COMM_WORLD_SIZE)")


def _pick_device(device_id):
    from ..runtime import device as rt
    if device_id is not None:
        from ..device import resolve
        rt.set_default_device(resolve(device_id))
        return
    if os.environ.get("CLGRAD_DEVICE"):
        return  # the user pinned a device for this process
    gpus = rt.gpus()
    if gpus:
        rt.set_default_device(gpus[_state.local_rank % len(gpus)])
    else:
        cpus = [d for d in rt.all_devices() if d.is_cpu]
        rt.set_default_device(cpus[0] if cpus else rt.all_devices()[0])


def _abort(code=1):
    """MPI_Abort: the launcher kills every rank.  Give its I/O forwarding a moment to pass on what this
    rank printed last (the traceback), and never come back (MPI_Abort may return before the kill)."""
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:
            pass
    time.sleep(0.3)
    try:
        _mpi().COMM_WORLD.Abort(code)
    finally:
        os._exit(code)


def _at_exit():
    pg = _state.pg
    if pg is not None and pg.broken:
        # MPI_Finalize would wait for the collective that never completed: abort instead
        print(f"engine.distributed: rank {pg.rank()}: exiting with a broken process group ({pg.broken}); "
              "calling MPI_Abort", file=sys.stderr)
        _abort(1)


def _excepthook(tp, val, tb):
    (_state.prev_excepthook or sys.__excepthook__)(tp, val, tb)
    pg = _state.pg
    if pg is not None and pg.size() > 1:
        print(f"engine.distributed: rank {pg.rank()} of {pg.size()} raised an uncaught {tp.__name__}; "
              "aborting the job so the other ranks do not wait for it (MPI_Abort)", file=sys.stderr)
        _abort(1)


def destroy_process_group(group=None):
    """Leave the process group (MPI itself stays initialised until the process exits)."""
    pg = _state.pg
    if pg is None:
        raise ValueError("Default process group has not been initialized, please make sure to call "
                         "init_process_group.")
    if not pg.broken:
        try:
            pg.comm.Free()
        except Exception:
            pass
    _state.pg = None
    GroupMember.WORLD = None
    if _state.prev_excepthook is not None:
        if sys.excepthook is _excepthook:
            sys.excepthook = _state.prev_excepthook
        _state.prev_excepthook = None


def is_initialized():
    return _state.pg is not None


def _group(group):
    pg = _state.pg
    if pg is None:
        raise ValueError("Default process group has not been initialized, please make sure to call "
                         "init_process_group.")
    if group is not None and group is not pg and group is not GroupMember.WORLD:
        raise ValueError("only the default (world) process group exists in engine.distributed; pass group=None")
    if pg.broken:
        raise DistBackendError(f"the process group is broken since an earlier collective failed: {pg.broken}")
    return pg


def get_rank(group=None):
    """This process's rank in the default group."""
    if _state.pg is None:
        _uninit()
    return _state.pg.rank()


def get_world_size(group=None):
    if _state.pg is None:
        _uninit()
    return _state.pg.size()


def _uninit():
    raise ValueError("Default process group has not been initialized, please make sure to call init_process_group.")


def get_node_local_rank(fallback_rank=None):
    """The rank among the processes on this node (MPI's COMM_TYPE_SHARED split)."""
    if _state.pg is not None:
        return _state.local_rank
    if "LOCAL_RANK" in os.environ:
        return int(os.environ["LOCAL_RANK"])
    if fallback_rank is not None:
        return int(fallback_rank)
    raise RuntimeError("LOCAL_RANK is not in the environment and no process group exists; call "
                       "init_process_group() or pass fallback_rank")


def _set_pg_timeout(timeout, group=None):
    """Change the collective timeout of the running group (torch has the same private helper)."""
    pg = _group(group)
    pg.timeout = timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else float(timeout)


def get_backend(group=None):
    return _group(group).backend


# ---- waiting with a deadline -------------------------------------------------------------------
class Work:
    """A collective in flight (torch.distributed.Work): wait() completes it (and writes the result
    into the tensors), is_completed() asks without waiting."""

    def __init__(self, pg, what, reqs, finish=None, keep=()):
        self._pg = pg
        self._what = what
        self._reqs = list(reqs)
        self._finish = finish
        self._keep = keep  # the host buffers MPI reads and writes until completion
        self._done = False
        self._seq = pg.seq
        self._deadline = time.monotonic() + pg.timeout
        self._t0 = time.monotonic()
        self.result_value = None

    def _test(self):
        if not self._reqs:
            return True
        return _mpi().Request.Testall(self._reqs)

    def is_completed(self):
        if not self._done and self._test():
            self._complete()
        return self._done

    def _complete(self):
        if not self._done:
            self._done = True
            if self._finish is not None:
                self.result_value = self._finish()
            self._keep = ()

    def wait(self, timeout=None):
        """Block until done (or this process group's timeout / `timeout` passes); returns True."""
        if self._done:
            return True
        deadline = self._deadline
        if timeout is not None:
            secs = timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else float(timeout)
            deadline = min(deadline, time.monotonic() + secs)
        pause = 0.0
        while not self._test():
            now = time.monotonic()
            if now > deadline:
                self._timed_out(now)
            if pause:
                time.sleep(pause)
            pause = min(max(pause * 2, 2e-5), 1e-3)
        self._complete()
        return True

    def _timed_out(self, now):
        pg = self._pg
        msg = (f"rank {pg.rank()} timed out after {now - self._t0:.1f}s in {self._what} (collective #{self._seq} "
               f"of a group of {pg.size()} ranks): another rank died, hangs, or called a different collective. "
               f"The process group is unusable from now on; the job is aborted when this process exits. "
               f"(init_process_group(timeout=...) or CLGRAD_DIST_TIMEOUT=<seconds> set the limit, now "
               f"{pg.timeout:g}s)")
        pg.broken = msg
        raise DistTimeoutError(msg)

    def is_success(self):
        return self._done

    def exception(self):
        return None

    def result(self):
        return self.result_value

    def synchronize(self):
        self.wait()


def _run(pg, what, reqs, finish, async_op, keep=()):
    pg.seq += 1
    w = Work(pg, what, reqs, finish, keep)
    if async_op:
        return w
    w.wait()
    return None


# ---- host <-> device --------------------------------------------------------------------------
def _check_tensor(t, name="tensor"):
    from ..tensor import Tensor
    if not isinstance(t, Tensor):
        raise TypeError(f"Invalid function argument. Expected parameter `{name}` of type torch.Tensor but got "
                        f"{type(t).__name__} instead.")


def to_host(t, dtype=None):
    """A new contiguous 1-D numpy copy of `t` (waits for the kernels that write it)."""
    from ..tensor import to_numpy
    a = to_numpy(t).reshape(-1)
    if dtype is not None and a.dtype != dtype:
        a = a.astype(dtype)
    return a


def from_host(t, arr):
    """Write the flat host array `arr` into `t` in place (any strides)."""
    from ..runtime import launch as _launch
    arr = np.ascontiguousarray(arr, dtype=t.dtype.np)
    if arr.size != t.numel():
        raise RuntimeError(f"internal: {arr.size} values for a tensor of {t.numel()} elements")
    if not arr.size:
        return
    if t.is_contiguous():
        _launch.copy_to_device(t._storage.device, t._storage.buf, t._offset * t.dtype.itemsize, arr)
        t._storage.version += 1
    else:
        from ..autograd import no_grad
        from ..tensor import from_numpy_array
        with no_grad():
            t.copy_(from_numpy_array(arr.reshape(tuple(t.shape)), t._storage.device))


def _wire_dtype(dt):
    """The host dtype MPI reduces: float16 goes as float32 (MPI has no half), bool as uint8."""
    n = np.dtype(dt.np)
    if n == np.float16:
        return np.dtype(np.float32)
    if n == np.bool_:
        return np.dtype(np.uint8)
    return n


def _mpi_op(op, dt):
    MPI = _mpi()
    is_bool = np.dtype(dt.np) == np.bool_
    if op is ReduceOp.SUM or op is ReduceOp.AVG:
        if op is ReduceOp.AVG and not dt.is_floating_point:
            raise ValueError(f"ReduceOp.AVG needs a floating point tensor, got {dt}")
        return MPI.LOR if is_bool else MPI.SUM
    if op is ReduceOp.PRODUCT:
        return MPI.LAND if is_bool else MPI.PROD
    if op is ReduceOp.MIN:
        return MPI.LAND if is_bool else MPI.MIN
    if op is ReduceOp.MAX:
        return MPI.LOR if is_bool else MPI.MAX
    raise ValueError(f"unknown reduce op {op!r}; use engine.distributed.ReduceOp.SUM, AVG, PRODUCT, MIN or MAX")


def _avg(arr, op, world):
    if op is ReduceOp.AVG:
        arr /= world
    return arr


def _same_device_dtype(tensors, ref, what):
    for i, t in enumerate(tensors):
        _check_tensor(t)
        if t.dtype is not ref.dtype:
            raise TypeError(f"{what}: tensor {i} has dtype {t.dtype} but the input is {ref.dtype}")
        if t.numel() != ref.numel():
            raise ValueError(f"{what}: tensor {i} has {t.numel()} elements {tuple(t.shape)} but the input has "
                             f"{ref.numel()} {tuple(ref.shape)}")


# ---- collectives ------------------------------------------------------------------------------
def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce `tensor` over all ranks, in place on every rank."""
    pg = _group(group)
    _check_tensor(tensor)
    mop = _mpi_op(op, tensor.dtype)
    buf = to_host(tensor, _wire_dtype(tensor.dtype))
    req = pg.comm.Iallreduce(_mpi().IN_PLACE, buf, op=mop)
    return _run(pg, "all_reduce", [req], lambda: from_host(tensor, _avg(buf, op, pg.size())), async_op, (buf,))


def broadcast(tensor, src=0, group=None, async_op=False, group_src=None):
    """Copy `tensor` of rank `src` into `tensor` of every rank."""
    pg = _group(group)
    _check_tensor(tensor)
    src = group_src if group_src is not None else src
    _check_rank(pg, src, "src")
    if pg.rank() == src:
        buf = to_host(tensor)
        finish = None
    else:
        buf = np.empty(tensor.numel(), dtype=tensor.dtype.np)
        finish = lambda: from_host(tensor, buf)  # noqa: E731
    req = pg.comm.Ibcast(_u8(buf), root=src)
    return _run(pg, "broadcast", [req], finish, async_op, (buf,))


def _u8(a):
    """Move raw bytes (any dtype, bool and half included) where no arithmetic happens."""
    return a.view(np.uint8)


def _check_rank(pg, r, name):
    if not isinstance(r, (int, np.integer)) or not 0 <= int(r) < pg.size():
        raise ValueError(f"Invalid {name} rank {r!r}: it must be in [0, {pg.size() - 1}]")


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """tensor_list[i] <- `tensor` of rank i (tensor_list: world_size tensors shaped like `tensor`)."""
    pg = _group(group)
    _check_tensor(tensor)
    if not isinstance(tensor_list, (list, tuple)) or len(tensor_list) != pg.size():
        raise ValueError(f"all_gather: tensor_list must be a list of world_size={pg.size()} tensors, got "
                         f"{len(tensor_list) if isinstance(tensor_list, (list, tuple)) else type(tensor_list)}")
    _same_device_dtype(tensor_list, tensor, "all_gather")
    send = to_host(tensor)
    recv = np.empty((pg.size(), send.size), dtype=send.dtype)
    req = pg.comm.Iallgather(_u8(send), _u8(recv))

    def finish():
        for t, row in zip(tensor_list, recv):
            from_host(t, row)
    return _run(pg, "all_gather", [req], finish, async_op, (send, recv))


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """output_tensor <- the inputs of all ranks, concatenated along dim 0 (or stacked)."""
    pg = _group(group)
    _check_tensor(output_tensor, "output_tensor")
    _check_tensor(input_tensor, "input_tensor")
    if output_tensor.numel() != pg.size() * input_tensor.numel():
        raise ValueError(f"all_gather_into_tensor: output has {output_tensor.numel()} elements, it needs world_size "
                         f"* input = {pg.size()} * {input_tensor.numel()}")
    if output_tensor.dtype is not input_tensor.dtype:
        raise TypeError(f"all_gather_into_tensor: output dtype {output_tensor.dtype} != input dtype "
                        f"{input_tensor.dtype}")
    send = to_host(input_tensor)
    recv = np.empty(pg.size() * send.size, dtype=send.dtype)
    req = pg.comm.Iallgather(_u8(send), _u8(recv))
    return _run(pg, "all_gather_into_tensor", [req], lambda: from_host(output_tensor, recv), async_op, (send, recv))


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """output <- the reduction over ranks of input_list[rank]."""
    pg = _group(group)
    _check_tensor(output, "output")
    if not isinstance(input_list, (list, tuple)) or len(input_list) != pg.size():
        raise ValueError(f"reduce_scatter: input_list must be a list of world_size={pg.size()} tensors")
    _same_device_dtype(input_list, output, "reduce_scatter")
    mop = _mpi_op(op, output.dtype)
    wt = _wire_dtype(output.dtype)
    send = np.concatenate([to_host(t, wt) for t in input_list]) if output.numel() else np.empty(0, wt)
    recv = np.empty(output.numel(), dtype=wt)
    req = pg.comm.Ireduce_scatter_block(send, recv, op=mop)
    return _run(pg, "reduce_scatter", [req], lambda: from_host(output, _avg(recv, op, pg.size())), async_op,
                (send, recv))


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    """output <- block `rank` (along dim 0) of the reduction over ranks of `input`."""
    pg = _group(group)
    _check_tensor(output, "output")
    _check_tensor(input, "input")
    if input.numel() != pg.size() * output.numel():
        raise ValueError(f"reduce_scatter_tensor: input has {input.numel()} elements, it needs world_size * output "
                         f"= {pg.size()} * {output.numel()}")
    if output.dtype is not input.dtype:
        raise TypeError(f"reduce_scatter_tensor: output dtype {output.dtype} != input dtype {input.dtype}")
    mop = _mpi_op(op, output.dtype)
    wt = _wire_dtype(output.dtype)
    send = to_host(input, wt)
    recv = np.empty(output.numel(), dtype=wt)
    req = pg.comm.Ireduce_scatter_block(send, recv, op=mop)
    return _run(pg, "reduce_scatter_tensor", [req], lambda: from_host(output, _avg(recv, op, pg.size())),
                async_op, (send, recv))


def reduce(tensor, dst=0, op=ReduceOp.SUM, group=None, async_op=False, group_dst=None):
    """The reduction over ranks lands in `tensor` of rank `dst` (the others keep theirs)."""
    pg = _group(group)
    _check_tensor(tensor)
    dst = group_dst if group_dst is not None else dst
    _check_rank(pg, dst, "dst")
    mop = _mpi_op(op, tensor.dtype)
    wt = _wire_dtype(tensor.dtype)
    send = to_host(tensor, wt)
    recv = np.empty_like(send) if pg.rank() == dst else None
    req = pg.comm.Ireduce(send, recv, op=mop, root=dst)
    finish = (lambda: from_host(tensor, _avg(recv, op, pg.size()))) if pg.rank() == dst else None
    return _run(pg, "reduce", [req], finish, async_op, (send, recv))


def gather(tensor, gather_list=None, dst=0, group=None, async_op=False, group_dst=None):
    """gather_list (on `dst` only) <- `tensor` of every rank."""
    pg = _group(group)
    _check_tensor(tensor)
    dst = group_dst if group_dst is not None else dst
    _check_rank(pg, dst, "dst")
    send = to_host(tensor)
    recv = None
    if pg.rank() == dst:
        if gather_list is None or len(gather_list) != pg.size():
            raise ValueError(f"gather: the destination rank needs gather_list with world_size={pg.size()} tensors")
        _same_device_dtype(gather_list, tensor, "gather")
        recv = np.empty((pg.size(), send.size), dtype=send.dtype)
    elif gather_list:
        raise ValueError("gather: Argument ``gather_list`` must NOT be specified on non-destination ranks.")
    req = pg.comm.Igather(_u8(send), None if recv is None else _u8(recv), root=dst)

    def finish():
        if recv is not None:
            for t, row in zip(gather_list, recv):
                from_host(t, row)
    return _run(pg, "gather", [req], finish, async_op, (send, recv))


def scatter(tensor, scatter_list=None, src=0, group=None, async_op=False, group_src=None):
    """`tensor` of rank i <- scatter_list[i] of rank `src`."""
    pg = _group(group)
    _check_tensor(tensor)
    src = group_src if group_src is not None else src
    _check_rank(pg, src, "src")
    send = None
    if pg.rank() == src:
        if scatter_list is None or len(scatter_list) != pg.size():
            raise ValueError(f"scatter: the source rank needs scatter_list with world_size={pg.size()} tensors")
        _same_device_dtype(scatter_list, tensor, "scatter")
        send = np.concatenate([to_host(t) for t in scatter_list]) if tensor.numel() else np.empty(0, tensor.dtype.np)
    elif scatter_list:
        raise ValueError("scatter: Argument ``scatter_list`` must NOT be specified on non-source ranks.")
    recv = np.empty(tensor.numel(), dtype=tensor.dtype.np)
    req = pg.comm.Iscatter(None if send is None else _u8(send), _u8(recv), root=src)
    return _run(pg, "scatter", [req], lambda: from_host(tensor, recv), async_op, (send, recv))


def barrier(group=None, async_op=False, device_ids=None):
    """Wait until every rank got here (bounded by the timeout)."""
    pg = _group(group)
    return _run(pg, "barrier", [pg.comm.Ibarrier()], None, async_op)


_TAG = 7071


def isend(tensor, dst, group=None, tag=0):
    pg = _group(group)
    _check_tensor(tensor)
    _check_rank(pg, dst, "dst")
    buf = to_host(tensor)
    pg.seq += 1
    return Work(pg, f"send to rank {dst}", [pg.comm.Isend(_u8(buf), dest=dst, tag=_TAG + tag)], None, (buf,))


def irecv(tensor, src=None, group=None, tag=0):
    pg = _group(group)
    _check_tensor(tensor)
    buf = np.empty(tensor.numel(), dtype=tensor.dtype.np)
    source = _mpi().ANY_SOURCE if src is None else src
    req = pg.comm.Irecv(_u8(buf), source=source, tag=_TAG + tag)
    pg.seq += 1
    w = Work(pg, f"recv from rank {'any' if src is None else src}", [req], None, (buf,))

    def finish():
        from_host(tensor, buf)
        return src
    w._finish = finish
    return w


def send(tensor, dst, group=None, tag=0):
    isend(tensor, dst, group, tag).wait()


def recv(tensor, src=None, group=None, tag=0):
    """Receive into `tensor`; returns the sender's rank."""
    pg = _group(group)
    if src is None:
        # find the sender first so the receive can name it
        MPI = _mpi()
        st = MPI.Status()
        deadline = time.monotonic() + pg.timeout
        while not pg.comm.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG + tag, status=st):
            if time.monotonic() > deadline:
                Work(pg, "recv from any rank", [])._timed_out(time.monotonic())
            time.sleep(1e-4)
        src = st.Get_source()
    irecv(tensor, src, group, tag).wait()
    return src


# ---- Python objects (pickled, as torch does) ----------------------------------------------------
def broadcast_object_list(object_list, src=0, group=None, device=None):
    """object_list[:] of every rank <- object_list of rank `src` (pickled)."""
    pg = _group(group)
    _check_rank(pg, src, "src")
    if pg.rank() == src:
        data = np.frombuffer(pickle.dumps(list(object_list)), dtype=np.uint8)
        n = np.array([data.size], dtype=np.int64)
    else:
        n = np.zeros(1, dtype=np.int64)
    _run(pg, "broadcast_object_list (size)", [pg.comm.Ibcast(n, root=src)], None, False)
    if pg.rank() != src:
        data = np.empty(int(n[0]), dtype=np.uint8)
    _run(pg, "broadcast_object_list", [pg.comm.Ibcast(data, root=src)], None, False)
    if pg.rank() != src:
        objs = pickle.loads(data.tobytes())
        object_list[:len(objs)] = objs


def all_gather_object(object_list, obj, group=None):
    """object_list[i] <- `obj` of rank i (pickled)."""
    pg = _group(group)
    if len(object_list) != pg.size():
        raise ValueError(f"all_gather_object: object_list must have world_size={pg.size()} entries")
    data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
    sizes = np.empty(pg.size(), dtype=np.int64)
    _run(pg, "all_gather_object (sizes)", [pg.comm.Iallgather(np.array([data.size], np.int64), sizes)], None, False)
    recv = np.empty(int(sizes.sum()), dtype=np.uint8)
    displ = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    req = pg.comm.Iallgatherv(data, [recv, (sizes.tolist(), displ.tolist())])
    _run(pg, "all_gather_object", [req], None, False)
    for i in range(pg.size()):
        object_list[i] = pickle.loads(recv[displ[i]:displ[i] + sizes[i]].tobytes())


def _signature(items):
    """A checksum of a list of (name, shape, dtype) that is the same in every process."""
    return zlib.crc32(repr(list(items)).encode()) & 0x7FFFFFFF
