"""The monitor under torch.distributed: each rank's statistics reduced to rank 0 when the monitor reads its
buffers (one collective per read, never per step), and the facts the distributed rules read."""

from __future__ import annotations

from typing import Any, Optional


class Ranks:
    """Nothing yet: a single process."""

    rank = 0

    @staticmethod
    def detect(model, optimizer, wanted: Optional[bool]) -> Optional["Ranks"]:
        import torch.distributed as dist  # noqa: PLC0415

        if wanted is False or not (dist.is_available() and dist.is_initialized()):
            return None
        return None  # filled in with the distributed rules

    def see_batch(self, batch: Any, step: int) -> None:
        pass

    def gather(self, data: dict) -> dict:
        return data

    def scalars(self) -> dict:
        return {}

    def close(self) -> None:
        pass
