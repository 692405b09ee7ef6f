"""Facts of a distributed run under doctor.watch: what the ranks saw and held, compared at each read."""

from __future__ import annotations

from doctor.catalogue import MetricDef, metric

PROBE = "distributed"

METRICS: list[MetricDef] = [
    metric("dist.world_size", PROBE, "Processes in the torch.distributed group.", unit="ranks"),
    metric("dist.steps_compared", PROBE, "Steps whose batches were compared across ranks.", unit="steps"),
    metric("dist.same_batch_frac", PROBE, "Share of the compared steps in which every rank trained on the same batch "
           "(a fingerprint of its inputs).", unit="fraction"),
    metric("dist.repeated_batch_frac", PROBE, "Share of the steps after the first epoch whose batch, on this rank, had "
           "been drawn before exactly as it was (same samples, same order).", unit="fraction"),
    metric("dist.params_checked", PROBE, "Parameter tensors compared across ranks at each read.", unit="params"),
    metric("dist.params_differ", PROBE, "Parameter tensors whose values differ across ranks after a step (the most at "
           "any read).", unit="params"),
    metric("dist.first_param_differ", PROBE, "The first parameter that differs across ranks.", kind="text"),
    metric("dist.rank_batch", PROBE, "Samples per rank per step.", unit="samples"),
    metric("dist.global_batch", PROBE, "Samples per step over all ranks.", unit="samples"),
    metric("dist.bn_unsynced_layers", PROBE, "BatchNorm layers that normalise over the rank's own batch only (not "
           "SyncBatchNorm).", unit="layers"),
    metric("dist.first_bn_layer", PROBE, "The first such BatchNorm layer.", kind="text"),
    metric("dist.lr", PROBE, "Learning rate of the optimizer's first parameter group.", unit=""),
    # Only `doctor check --nproc N` knows the single-process run beside the distributed one.
    metric("dist.single_lr", PROBE, "Learning rate of the same target in one process.", unit=""),
    metric("dist.single_batch", PROBE, "Samples per step of the same target in one process.", unit="samples"),
    metric("dist.lr_scale", PROBE, "Learning rate under DistributedDataParallel over the one-process rate.", unit="x"),
    metric("dist.batch_scale", PROBE, "Global batch under DistributedDataParallel over the one-process batch.",
           unit="x"),
    metric("dist.set_epoch_called", PROBE, "The DistributedSampler's set_epoch was called each epoch (doctor calls it "
           "when it built the sampler, or when the target's source calls it).", kind="bool"),
]

SERIES: dict[str, str] = {}
