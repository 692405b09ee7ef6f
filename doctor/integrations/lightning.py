"""doctor.watch as a Lightning Callback: `Trainer(callbacks=[DoctorCallback(every=100)])` (pip install doctor[lightning])."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional, Union

try:
    from lightning.pytorch import Callback
except ImportError:  # the older package name
    try:
        from pytorch_lightning import Callback
    except ImportError as exc:  # pragma: no cover - the message is the point
        raise ImportError("doctor.integrations.lightning needs Lightning: pip install 'doctor[lightning]'") from exc

from doctor.monitor import DoctorHalt, Monitor


def _loss(outputs: Any) -> Any:
    """The step's loss from what training_step returned: a tensor, or a dict with 'loss'."""
    if isinstance(outputs, dict):
        return outputs.get("loss")
    return outputs


class DoctorCallback(Callback):
    """Watches the LightningModule and its first optimizer; the findings print as they appear.

    With `halt_on`, a rule that fires stops the fit cleanly (trainer.should_stop) and the reason is kept in
    `halted`. With `report_dir`, the usual report is written when the fit ends.
    """

    def __init__(self, every: int = 100, *, logdir: Union[str, Path, None] = None, rules: Optional[Iterable[str]] = None,
                 halt_on: Iterable[str] = (), report_dir: Union[str, Path, None] = None, **options: Any) -> None:
        self.options = dict(every=every, logdir=logdir, rules=rules, halt_on=tuple(halt_on), **options)
        self.report_dir = report_dir
        self.monitor: Optional[Monitor] = None
        self.halted: Optional[DoctorHalt] = None

    def on_fit_start(self, trainer, pl_module) -> None:
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        self.monitor = Monitor(pl_module, optimizer, name=type(pl_module).__name__, **self.options).start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = _loss(outputs)
        if self.monitor is None or loss is None:
            return
        try:
            self.monitor.step(loss)
        except DoctorHalt as stop:
            self.halted = stop
            trainer.should_stop = True
            print(stop)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self.monitor is None or trainer.sanity_checking:
            return
        val = trainer.callback_metrics.get("val_loss")
        if val is not None:
            self.monitor.val(val)

    def _finish(self) -> None:
        if self.monitor is None:
            return
        self.monitor.close()
        if self.report_dir is not None:
            self.monitor.report(self.report_dir)

    def on_fit_end(self, trainer, pl_module) -> None:
        self._finish()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._finish()
