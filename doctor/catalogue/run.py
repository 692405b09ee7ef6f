"""Metrics of a finished training run, read from its TensorBoard logs (`doctor check --logdir`)."""

from __future__ import annotations

from doctor.catalogue import MetricDef, metric

PROBE = "tensorboard_logs"

# Only a logged run has these: a training burst is too short for spikes or a late rise to mean much.
METRICS: list[MetricDef] = [
    metric("run.points", PROBE, "Points logged on the training-loss curve.", unit="points"),
    metric("run.last_step", PROBE, "Global step of the last training-loss point.", unit="step"),
    metric("run.loss_rise", PROBE, "Smoothed training loss at the end over its smoothed minimum (running median), discounted for noise: a lower bound.", unit="x"),
    metric("run.loss_best_at", PROBE, "Where the smoothed training loss was lowest, as a fraction of the run (0 start, 1 end).", unit="fraction"),
    metric("run.loss_spikes", PROBE, "Jumps of the training loss above twice its trailing median, six times its noise and a quarter of the run's fall.", unit="spikes"),
    metric("run.loss_spike_max", PROBE, "Largest training loss over the median of the points before it.", unit="x"),
]

SERIES: dict[str, str] = {}
