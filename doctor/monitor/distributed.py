"""The monitor under torch.distributed: each rank's statistics reduced to rank 0 when the monitor reads its
buffers (a few collectives per read, at the same steps on every rank, never one per step), and the facts
the distributed rules read: same batches on every rank, epochs that repeat, parameters that drift apart,
BatchNorm over a small per-rank batch, the global batch.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

FINGERPRINT_ELEMENTS = 4096  # the first elements of a batch's inputs are enough to tell two batches apart
READ_EVERY = 64  # under torch.distributed the buffers are read at multiples of max(every, this) on every rank


def _first_tensor(batch: Any) -> Optional[torch.Tensor]:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for item in batch:
            t = _first_tensor(item)
            if t is not None:
                return t
    return None


class Ranks:
    """One rank's side of the comparison; rank 0 also keeps the facts for the rules."""

    def __init__(self, model: nn.Module, optimizer) -> None:
        import torch.distributed as dist  # noqa: PLC0415

        self.dist = dist
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.optimizer = optimizer
        self.params = [(n, p) for n, p in model.named_parameters()]  # the monitor hands over the unwrapped module
        self.device = next((p.device for _, p in self.params), torch.device("cpu"))
        self.bn_layers = [n for n, m in model.named_modules()
                          if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.SyncBatchNorm)]
        self.fingerprints: list[torch.Tensor] = []
        self.rows: Optional[int] = None
        self.seen: dict[tuple, int] = {}
        self.same = self.compared = self.repeated = self.after_first = 0
        self.differ, self.first_differ = 0, ""

    @staticmethod
    def detect(model, optimizer, wanted: Optional[bool]) -> Optional["Ranks"]:
        import torch.distributed as dist  # noqa: PLC0415

        if wanted is False or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return None
        return Ranks(model, optimizer)

    def see_batch(self, batch: Any, step: int) -> None:
        """A fingerprint of the step's inputs, on the device: their first elements, weighted by position."""
        x = _first_tensor(batch)
        if x is None:
            return
        self.rows = int(x.shape[0]) if x.dim() else 1
        flat = x.detach().reshape(-1)[:FINGERPRINT_ELEMENTS].double()
        weights = torch.arange(1, flat.numel() + 1, device=flat.device, dtype=torch.float64)
        self.fingerprints.append(torch.stack([flat.sum(), (flat * weights).sum()]).to(self.device))

    def gather(self, data: dict) -> dict:
        """At a read, on every rank at the same step: the mean loss over ranks, the batches and weights compared."""
        dist = self.dist
        losses = torch.tensor(data["losses"], dtype=torch.float64, device=self.device)
        dist.all_reduce(losses)
        data["losses"] = (losses / self.world).tolist()
        if self.fingerprints:
            mine = torch.stack(self.fingerprints)
            self.fingerprints = []
            every = [torch.empty_like(mine) for _ in range(self.world)]
            dist.all_gather(every, mine)
            stacked = torch.stack(every)  # (ranks, steps, 2)
            same = (stacked == stacked[0:1]).all(dim=2).all(dim=0)
            self.same += int(same.sum())
            self.compared += int(same.numel())
            for fp in mine.tolist():  # on this rank: a batch drawn before, exactly as it was
                key = (round(fp[0], 6), round(fp[1], 6))
                if self.seen:
                    self.after_first += 1
                    self.repeated += key in self.seen
                self.seen.setdefault(key, len(self.seen))
        # Two sums per tensor, plain and weighted by position: a plain sum alone misses drift that keeps the sum
        # (the biases of a softmax layer move by gradients that sum to zero).
        sums = torch.stack([torch.stack([t.sum(), (t * torch.arange(1, t.numel() + 1, device=t.device,
                                                                      dtype=torch.float64)).sum()])
                            for t in (p.detach().double().reshape(-1) for _, p in self.params)]) \
            if self.params else None
        if sums is not None:
            every = [torch.empty_like(sums) for _ in range(self.world)]
            dist.all_gather(every, sums)
            stacked = torch.stack(every)
            scale = stacked.abs().amax(dim=0).clamp_min(1e-12)
            apart = (((stacked - stacked[0:1]).abs().amax(dim=0) / scale) > 1e-6).any(dim=-1)
            n = int(apart.sum())
            if n > self.differ:
                self.differ = n
                self.first_differ = self.params[int(apart.nonzero()[0])][0]
        return data

    def scalars(self) -> dict:
        sc: dict = {"dist.world_size": self.world, "dist.params_checked": len(self.params),
                    "dist.params_differ": self.differ, "dist.bn_unsynced_layers": len(self.bn_layers)}
        if self.first_differ:
            sc["dist.first_param_differ"] = self.first_differ
        if self.bn_layers:
            sc["dist.first_bn_layer"] = self.bn_layers[0]
        if self.compared:
            sc["dist.steps_compared"] = self.compared
            sc["dist.same_batch_frac"] = self.same / self.compared
        if self.after_first >= 8:
            sc["dist.repeated_batch_frac"] = self.repeated / self.after_first
        if self.rows is not None:
            sc["dist.rank_batch"], sc["dist.global_batch"] = self.rows, self.rows * self.world
        if self.optimizer is not None and self.optimizer.param_groups:
            sc["dist.lr"] = self.optimizer.param_groups[0].get("lr")
        return sc

    def halt(self, flag: bool) -> bool:
        """Rank 0's decision to stop, given to every rank at the same read."""
        t = torch.tensor([1 if flag else 0], device=self.device)
        self.dist.broadcast(t, src=0)
        return bool(t.item())

    def close(self) -> None:
        self.fingerprints = []
