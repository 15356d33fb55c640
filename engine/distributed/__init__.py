"""engine.distributed: data-parallel training over MPI, with torch.distributed's names.

    import engine.distributed as dist
    dist.init_process_group("mpi")          # ranks and world size come from mpirun
    dist.all_reduce(t, op=dist.ReduceOp.SUM)

Launch with `mpirun -n 4 python train.py` or `python -m engine.distributed.run -n 4 train.py`.
MPI is initialised only when init_process_group (or the launcher's bootstrap) first needs it, so
importing this package costs nothing in a single-process program.  See README.md here.
"""
from .distributed_c10d import (Backend, DistBackendError, DistError, DistTimeoutError, GroupMember,  # noqa: F401
                               ProcessGroup, ReduceOp, Work, all_gather, all_gather_into_tensor, all_gather_object,
                               all_reduce, barrier, broadcast, broadcast_object_list, default_pg_timeout,
                               destroy_process_group, gather, get_backend, get_node_local_rank, get_rank,
                               get_world_size, init_process_group, irecv, is_available, is_initialized,
                               is_mpi_available, isend, recv, reduce, reduce_scatter, reduce_scatter_tensor,
                               scatter, send)
from .distributed_c10d import __all__  # noqa: F401


def is_nccl_available():
    return False


def is_gloo_available():
    return False


def is_torchelastic_launched():
    return False
