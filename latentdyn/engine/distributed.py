"""Training under ``torchrun``: torch.distributed with DistributedDataParallel.

Launched as ``torchrun --nproc_per_node=N -m latentdyn train vae ...`` (or ``train dynamics``),
every process finds RANK, WORLD_SIZE and LOCAL_RANK in its environment and :func:`session`
joins the process group: NCCL when the processes use CUDA GPUs (one GPU per process,
``cuda:LOCAL_RANK``), gloo on CPUs. Without those variables (a plain ``latentdyn`` call) nothing
changes: one process, no process group.

The rules the trainers follow (docs/distributed.md):

- ``--batch-size`` is the *global* batch: each of the N ranks takes ``batch_size / N`` examples
  per step and DDP averages the gradients, so a step sees the same number of examples as a
  one-process step and the learning rate needs no rescaling.
- Each rank holds only its shard of the training data: examples ``rank, rank + N, ...`` of an
  image dataset, or those sequences of a scene file (read from HDF5 by index, in memory or
  streamed), trimmed so every rank has the same number of batches per epoch.
- Rank 0 alone writes: the config, metrics, checkpoints, figures and progress bars. The other
  ranks read ``last.pt`` to resume. The epoch's training sums are all-reduced, so the logged
  training loss is over all shards.
- At the end the ranks compare a hash of their parameters; rank 0 writes ``distributed.json``.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from latentdyn.core.errors import LatentdynError


@dataclass
class Dist:
    """Where this process stands: rank, world size, local rank, backend (None: not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def stream(self, stream: int) -> int:
        """A random-stream id of its own for this rank (rank 0 keeps the one-process streams)."""
        return stream + 1000 * self.rank

    def shard(self, n: int) -> np.ndarray:
        """This rank's indices of n items: rank, rank + world, ... (every rank gets n // world)."""
        return np.arange(self.rank, (n // self.world) * self.world, self.world)

    def local_batch(self, batch_size: int) -> int:
        """The per-rank share of the global ``batch_size`` (it must divide)."""
        if batch_size % self.world:
            raise LatentdynError(f"--batch-size {batch_size} is the global batch and must divide among the {self.world} processes; "
                                 f"use a multiple of {self.world}")
        return batch_size // self.world

    def all_sum(self, tensor):
        """Sum a tensor over the ranks, in place (a no-op in one process)."""
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def gather(self, obj: Any) -> list:
        if not self.active:
            return [obj]
        import torch.distributed as dist

        out: list = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def on_main(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on rank 0 and hand its result (or its LatentdynError) to every rank."""
        if not self.active:
            return fn()
        import torch.distributed as dist

        box: list = [None]
        if self.main:
            try:
                box[0] = ("ok", fn())
            except LatentdynError as e:
                box[0] = ("error", str(e))
        dist.broadcast_object_list(box, src=0)
        status, value = box[0]
        if status == "error":
            raise LatentdynError(value)
        return value


def from_env() -> Dist:
    """The launcher's variables (torchrun, or SLURM via torchrun), or a one-process Dist."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    try:
        return Dist(rank=int(os.environ["RANK"]), world=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    except (KeyError, ValueError):
        raise LatentdynError("WORLD_SIZE is set but RANK is not; start distributed runs with torchrun") from None


@contextlib.contextmanager
def session(device_name: str | None = "auto") -> Iterator[tuple[Dist, Any]]:
    """Join the process group when launched by torchrun; yield (Dist, torch.device).

    CUDA processes use NCCL and ``cuda:LOCAL_RANK``; CPU processes use gloo. The group is left
    when the block ends (if this call created it).
    """
    import torch

    from latentdyn.engine.devices import pick_device

    d = from_env()
    if not d.active:
        yield d, pick_device(device_name)
        return
    import torch.distributed as dist

    name = (device_name or "auto").lower()
    if name == "auto":
        use_cuda = torch.cuda.is_available()
    elif name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LatentdynError(f"--device {device_name}: no CUDA GPU is visible here; use --device cpu")
        use_cuda = True
    elif name == "cpu":
        use_cuda = False
    else:
        raise LatentdynError(f"--device {device_name}: distributed training runs on cuda (NCCL) or cpu (gloo)")
    if use_cuda:
        if d.local_rank >= torch.cuda.device_count():
            raise LatentdynError(f"LOCAL_RANK {d.local_rank} but only {torch.cuda.device_count()} GPUs are visible; "
                                 "start at most one process per GPU (--nproc_per_node)")
        device = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    d.backend = "nccl" if use_cuda else "gloo"
    created = not dist.is_initialized()
    if created:
        # torch.distributed.nn.functional takes ``group.WORLD`` as the default argument of its
        # functions when first imported, and DDP imports it: imported after the group exists, it
        # keeps the group alive past destroy_process_group, and gloo's worker threads then race
        # interpreter shutdown (a worker freeing a tensor without the GIL aborts the process).
        # Imported first, its defaults are None.
        import torch.distributed.nn.functional  # noqa: F401

        kwargs = {"device_id": device} if use_cuda else {}
        dist.init_process_group(backend=d.backend, **kwargs)
    try:
        yield d, device
    finally:
        if created and dist.is_initialized():
            gc.collect()  # should a DDP wrapper be left in a reference cycle, it would still hold the group
            dist.destroy_process_group()


def wrap(model, d: Dist, device, compile: bool = False):
    """The module to train: DistributedDataParallel around ``model`` when distributed, then
    ``torch.compile`` when asked; ``model`` itself otherwise."""
    net = model
    if d.active:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    if compile:
        reason = compiler_missing(device)
        if reason:
            import warnings

            warnings.warn(f"compile: {reason}; training without torch.compile", stacklevel=2)
            return net
        import torch

        net = _CompiledOrEager(torch.compile(net), net)
    return net


def compiler_missing(device) -> str | None:
    """Why ``torch.compile`` cannot work here (None when it can): inductor builds C++ kernels for
    the CPU (a C++ compiler on the PATH) and Triton kernels for CUDA (the ``triton`` package)."""
    import importlib.util
    import shutil

    import torch

    if torch.device(device).type == "cuda":
        return None if importlib.util.find_spec("triton") else "no triton package for CUDA kernels"
    if torch.device(device).type == "cpu":
        return None if any(shutil.which(c) for c in ("g++", "c++", "clang++")) else "no C++ compiler on the PATH"
    return f"inductor does not build kernels for {torch.device(device).type}"


class _CompiledOrEager:
    """Calls the compiled module; should compiling fail at the first call (a compiler or backend
    error), warns once and calls the eager module from then on. Errors of the model itself pass."""

    def __init__(self, compiled, eager):
        self.compiled, self.eager, self.failed = compiled, eager, False

    def __call__(self, *args, **kwargs):
        if not self.failed:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - only compiler failures are swallowed, below
                if not _is_compiler_error(e):
                    raise
                import warnings

                warnings.warn(f"compile failed ({type(e).__name__}); training without torch.compile", stacklevel=2)
                self.failed = True
        return self.eager(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.eager, name)


def _is_compiler_error(e: BaseException) -> bool:
    names = {c.__name__ for c in type(e).__mro__}
    return bool(names & {"BackendCompilerFailed", "InvalidCxxCompiler", "CppCompileError"}) or \
        type(e).__module__.startswith(("torch._dynamo", "torch._inductor"))


def param_digest(model) -> str:
    """sha256 over the parameters and buffers, in order (to check the ranks agree)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def finish(model, d: Dist, run_dir, global_batch: int) -> dict | None:
    """Compare the ranks' parameters; rank 0 writes ``distributed.json``. Raises if they differ."""
    if not d.active:
        return None
    import json

    from latentdyn.core.fileio import atomic_path

    digests = d.gather(param_digest(model))
    info = {"world_size": d.world, "backend": d.backend, "global_batch_size": global_batch,
            "per_rank_batch_size": global_batch // d.world, "param_sha256": digests, "in_sync": len(set(digests)) == 1}
    if d.main:
        with atomic_path(os.path.join(run_dir, "distributed.json")) as tmp:
            tmp.write_text(json.dumps(info, indent=2) + "\n")
    if not info["in_sync"]:
        raise LatentdynError(f"the {d.world} processes ended with different parameters; see {run_dir}/distributed.json")
    return info
