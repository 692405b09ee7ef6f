"""The three budgets: how many steps and samples each probe may spend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    name: str
    train_steps: int  # optimizer steps in the training burst
    eval_every: int  # steps between validation evaluations
    eval_batches: int  # batches per evaluation, of validation data and of training data
    init_batches: int  # batches averaged for the loss at initialisation
    data_samples: int  # training samples examined for data statistics
    checkpoint_every: int  # steps between the one host sync that checks for NaN and saves progress
    timeout_s: float  # default wall-clock limit for the whole collection
    overfit_steps: int = 100  # most steps spent memorising one small batch
    lr_steps_per_decade: int = 5  # steps of the learning-rate range test per decade of rates
    timing_batches: int = 10  # batches read from the loader, and training steps timed, for the pipeline timing
    step_calls: int = 5  # calls of a custom train_step watched for missing zero_grad, step or clipping


BUDGETS: dict[str, Budget] = {
    "quick": Budget("quick", train_steps=20, eval_every=5, eval_batches=2, init_batches=2,
                    data_samples=2048, checkpoint_every=10, timeout_s=120,
                    overfit_steps=50, lr_steps_per_decade=3, timing_batches=5, step_calls=3),
    "standard": Budget("standard", train_steps=60, eval_every=10, eval_batches=4, init_batches=4,
                       data_samples=8192, checkpoint_every=20, timeout_s=300,
                       overfit_steps=100, lr_steps_per_decade=5, timing_batches=10, step_calls=5),
    "deep": Budget("deep", train_steps=300, eval_every=25, eval_batches=8, init_batches=8,
                   data_samples=50_000, checkpoint_every=50, timeout_s=1200,
                   overfit_steps=300, lr_steps_per_decade=10, timing_batches=30, step_calls=8),
}
