"""Training across processes and machines on PyTorch's own engine (torchrun + DistributedDataParallel).

``torchrun --nproc-per-node N -m seqattn train ...`` starts N processes with RANK, WORLD_SIZE,
LOCAL_RANK and MASTER_ADDR/PORT in their environment; ``Distributed.from_environment`` joins
the process group (gloo on the CPU, nccl on CUDA), and ``fit`` wraps the task's loss module in
``DistributedDataParallel``, which averages gradients over the ranks after every backward.
Each rank takes its shard of every step's batch (``shard``); only rank 0 writes checkpoints,
logs and the model.  Without those variables everything here is a no-op for one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from seqattn.errors import InputError


def _die_with_launcher() -> None:
    """Ask Linux to kill this rank when its parent (torchrun's agent) dies.

    torchrun starts each rank in a session of its own, so a ``kill -9`` of the launcher would
    leave the ranks training as orphans, still holding the --out lock and writing checkpoints
    under a resumed run.  PR_SET_PDEATHSIG makes the job die as a whole; elsewhere nothing is done.
    """
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
        if os.getppid() == 1:  # the launcher died before the call
            os._exit(1)


@dataclass
class Distributed:
    """Where this process stands in a run: its rank among ``world_size`` processes.

    rank 0 is the one that writes (checkpoints, the model, progress); ``local_rank`` picks the
    GPU on a machine with several.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: torch.device) -> "Distributed":
        """Join the process group torchrun describes in the environment, or run alone.

        The backend is nccl for a CUDA device and gloo otherwise (PyTorch's CPU backend).
        Raises:
            InputError: a WORLD_SIZE above 1 without the other torchrun variables.
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        import torch.distributed as dist

        for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
            if name not in os.environ:
                raise InputError(f"WORLD_SIZE={world_size} but {name} is not set: start distributed runs with torchrun")
        backend = "nccl" if device.type == "cuda" else "gloo"
        _die_with_launcher()
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), backend)

    def shard(self, items: list) -> list:
        """This rank's part of one step's batch: every world_size-th item from its rank on.

        The ranks' shards together are the batch a single process takes, so with the loss
        weighting of ``fit`` the averaged gradient is the one-process gradient.
        """
        return items[self.rank::self.world_size] if self.enabled else items

    def sum(self, value: float) -> float:
        """``value`` summed over the ranks (a float in, a float out on every rank)."""
        if not self.enabled:
            return value
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(tensor)
        return float(tensor.item())

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (JSON-like values: metrics, decisions)."""
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Leave the process group (end of a run)."""
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
