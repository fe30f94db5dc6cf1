"""graphc.distributed: processes that train together, as ``torch.distributed``, on MPI.

Start the processes with ``mpiexec -n N python train.py`` or ``python -m graphc.distributed.run
--nproc N train.py``; each calls ``init_process_group()`` and then the collectives below.
Needs ``graphc[mpi]`` (mpi4py and the MPICH library from PyPI) or a cluster's MPI.
"""
from .collectives import (ReduceOp, Work, all_gather, all_gather_into_tensor, all_gather_object, all_reduce,
                          barrier, broadcast, broadcast_object_list, gather, irecv, isend, recv, reduce,
                          reduce_scatter_tensor, scatter, send)
from .process_group import (GroupMember, ProcessGroup, destroy_process_group, get_backend, get_global_rank,
                            get_group_rank, get_node_local_rank, get_process_group_ranks, get_rank, get_world_size,
                            group, init_process_group, is_available, is_gloo_available, is_initialized,
                            is_mpi_available, is_nccl_available, new_group)

__all__ = [
    "GroupMember", "ProcessGroup", "ReduceOp", "Work", "all_gather", "all_gather_into_tensor", "all_gather_object",
    "all_reduce", "barrier", "broadcast", "broadcast_object_list", "destroy_process_group", "gather",
    "get_backend", "get_global_rank", "get_group_rank", "get_node_local_rank", "get_process_group_ranks", "get_rank", "get_world_size", "group", "init_process_group",
    "irecv", "is_available", "is_gloo_available", "is_initialized", "is_mpi_available", "is_nccl_available",
    "isend", "new_group", "recv", "reduce", "reduce_scatter_tensor", "scatter", "send",
]
