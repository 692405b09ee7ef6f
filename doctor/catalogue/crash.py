"""Crash facts (probe `crash`): what an exception from the user's forward, loss, backward or step pointed to.

Set by doctor/collect/crash.py whenever the user's code raises under a probe. The flags are false on a run
that did not crash, so crash rules pass rather than skip; the details describe the first crash of the run.
"""

from __future__ import annotations

from doctor.catalogue import MetricDef, metric

PROBE = "crash"

_KINDS = {
    "batchnorm_single_sample": "BatchNorm in train mode met a batch with one value per channel.",
    "loss_without_grad": "backward() was called on a loss that is not connected to any trainable parameter.",
    "inplace_modification": "An in-place operation overwrote a tensor that backward() still needed.",
    "backward_twice": "backward() ran through a graph whose saved tensors were already freed.",
    "device_mismatch": "An operation mixed tensors on different devices.",
    "label_range": "The loss met a class label outside its valid range.",
    "target_dtype_mismatch": "The loss was given targets of a dtype it does not accept.",
    "loss_shape_mismatch": "The loss was given an output and targets of shapes it cannot compare.",
    "input_dtype_mismatch": "The model was given inputs of a dtype its layers do not accept.",
}


def _t(name: str, doc: str) -> MetricDef:
    return metric(f"crash.{name}", PROBE, doc, kind="text")


METRICS: list[MetricDef] = [
    *(metric(f"crash.{k}", PROBE, doc, kind="bool") for k, doc in _KINDS.items()),
    metric("crash.count", PROBE, "Exceptions from the user's code that doctor recognised.", unit="crashes"),
    _t("kind", "The rule that explains the first recognised crash."),
    _t("subject", "Where the first recognised crash happened: located at the user's file and line."),
    _t("error", "The exception, in one line."),
    _t("stage", "The part of the training step that raised: forward, loss, backward or step."),
    _t("where", "What doctor was running: the first forward pass, or a probe."),
    _t("input_shape", "Shape of the input batch at the crash."),
    _t("input_dtype", "Dtype of the input batch at the crash."),
    _t("target_shape", "Shape of the targets at the crash."),
    _t("target_dtype", "Dtype of the targets at the crash."),
    _t("output_shape", "Shape of the model's output at the crash (when the forward pass finished)."),
    _t("output_dtype", "Dtype of the model's output at the crash."),
    _t("param_dtype", "Dtype of the model's parameters."),
    _t("loss_name", "The loss function."),
    _t("inplace_op", "The operation whose output was modified in place."),
    _t("devices", "The devices named in the error."),
    _t("bn_input_shape", "Shape of the input the BatchNorm layer rejected."),
    metric("crash.target_float", PROBE, "The targets at the crash are floating-point.", kind="bool"),
    metric("crash.target_integer", PROBE, "The targets at the crash are integers.", kind="bool"),
    metric("crash.output_ndim", PROBE, "Dimensions of the model's output at the crash.", unit="dims"),
    metric("crash.target_unit_dim", PROBE, "The targets carry a dimension of size 1 that the output does not.",
           kind="bool"),
    metric("crash.batch_differs", PROBE, "The output and the targets have different first (batch) dimensions.",
           kind="bool"),
    metric("crash.width_differs", PROBE, "The output and the targets have the same dimensions but a different last "
                                         "size.", kind="bool"),
    metric("crash.inplace_leaf", PROBE, "The tensor modified in place was a leaf (a parameter or an input), not the "
                                        "output of an operation.", kind="bool"),
    metric("crash.embedding_indices", PROBE, "An embedding was given indices of a dtype it does not accept.",
           kind="bool"),
    metric("crash.no_cuda", PROBE, "The code asked for a CUDA device on a machine (or a PyTorch build) without one.",
           kind="bool"),
    metric("crash.batch_rows", PROBE, "Samples in the batch at the crash.", unit="samples"),
    metric("crash.label", PROBE, "The out-of-range class label the loss named."),
]

SERIES: dict[str, str] = {}
