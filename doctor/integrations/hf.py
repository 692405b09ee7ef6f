"""doctor.watch as a Hugging Face TrainerCallback: `Trainer(..., callbacks=[DoctorCallback(every=100)])`
(pip install doctor[hf])."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional, Union

try:
    from transformers import TrainerCallback
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("doctor.integrations.hf needs transformers: pip install 'doctor[hf]'") from exc

from doctor.monitor import DoctorHalt, Monitor


class DoctorCallback(TrainerCallback):
    """Watches the Trainer's model and optimizer.

    The Trainer hands callbacks no per-step loss (only the logged average every `logging_steps`), so the
    callback reads the `loss` the model itself returns: a forward hook on the model keeps it, detached and on
    its device, and each optimizer step gets the mean over its micro-batches (gradient accumulation).
    """

    def __init__(self, every: int = 100, *, logdir: Union[str, Path, None] = None, rules: Optional[Iterable[str]] = None,
                 halt_on: Iterable[str] = (), report_dir: Union[str, Path, None] = None, **options: Any) -> None:
        self.options = dict(every=every, logdir=logdir, rules=rules, halt_on=tuple(halt_on), **options)
        self.report_dir = report_dir
        self.monitor: Optional[Monitor] = None
        self.halted: Optional[DoctorHalt] = None
        self._losses: list = []
        self._hook = None

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs) -> None:
        opt = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper holds the torch optimizer
        self.monitor = Monitor(model, opt, name=type(model).__name__, **self.options).start()
        self._hook = model.register_forward_hook(self._keep_loss)

    def _keep_loss(self, _module, _inputs, output) -> None:
        loss = getattr(output, "loss", None) if not isinstance(output, dict) else output.get("loss")
        if loss is not None and getattr(_module, "training", False):
            self._losses.append(loss.detach())

    def on_step_end(self, args, state, control, **kwargs) -> None:
        if self.monitor is None or not self._losses:
            return
        losses, self._losses = self._losses, []
        loss = losses[0] if len(losses) == 1 else sum(losses) / len(losses)
        try:
            self.monitor.step(loss)
        except DoctorHalt as stop:
            self.halted = stop
            control.should_training_stop = True
            print(stop)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs) -> None:
        if self.monitor is not None and metrics and "eval_loss" in metrics:
            self.monitor.val(metrics["eval_loss"])

    def on_train_end(self, args, state, control, **kwargs) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self.monitor is None:
            return
        self.monitor.close()
        if self.report_dir is not None:
            self.monitor.report(self.report_dir)
