"""The Metrics document the collector writes and the judge reads, and its catalogue of names.

This module must not import torch: the parent process, the rule engine and the renderers
use it on a machine where the collector may never run (a saved metrics.json).
"""

from __future__ import annotations

from enum import Enum
from typing import Literal, Optional, Union

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1

Value = Union[float, int, bool, str, None]
Scope = Literal["model", "layer", "class"]


class MetricKind(str, Enum):
    number = "number"
    bool = "bool"
    text = "text"


class MetricDef(BaseModel):
    """One name a rule may use: what it measures, in which unit, at which scope, by which probe."""

    name: str
    scope: Scope = "model"
    kind: MetricKind = MetricKind.number
    unit: str = ""
    probe: str
    doc: str


def _m(name: str, probe: str, doc: str, *, scope: Scope = "model", kind: str = "number", unit: str = "") -> MetricDef:
    return MetricDef(name=name, scope=scope, kind=MetricKind(kind), unit=unit, probe=probe, doc=doc)


# The catalogue. Every name a rule's `when`, `message` or cause may use must be here, so a typo
# in a rule is a load error. Sorted by probe, then name. Layer-scoped names hold one value per
# layer (Metrics.layers); class-scoped ones one value per class (Metrics.classes).
CATALOGUE: dict[str, MetricDef] = {
    d.name: d
    for d in [
        # setup: what the target resolved to
        _m("setup.has_train_data", "setup", "The target provides training data.", kind="bool"),
        _m("setup.has_val_data", "setup", "The target provides validation data.", kind="bool"),
        _m("setup.is_classification", "setup", "The task is single-label classification.", kind="bool"),
        _m("setup.num_outputs", "setup", "Size of the model's output's last dimension.", unit="units"),
        _m("setup.num_params", "setup", "Trainable parameters in the model.", unit="params"),
        _m("setup.lr", "setup", "Learning rate of the optimizer's first parameter group."),
        _m("setup.task", "setup", "The task: classification, binary, multilabel or regression.", kind="text"),
        # static facts from the module tree
        _m("static.activation_layers", "static", "Activation modules in the model.", unit="layers"),
        _m("static.relu_layers", "static", "ReLU-family activation modules (ReLU, ReLU6).", unit="layers"),
        _m("static.saturating_activations", "static", "Sigmoid and Tanh modules in the model.", unit="layers"),
        _m("static.normalization_layers", "static", "BatchNorm, LayerNorm, GroupNorm and similar modules.", unit="layers"),
        _m("static.param_layers", "static", "Modules that own parameters directly.", unit="layers"),
        _m("static.depth", "static", "Parametrised layers on the forward path.", unit="layers"),
        # data statistics
        _m("data.samples", "data_stats", "Training samples examined.", unit="samples"),
        _m("data.input_ndim", "data_stats", "Dimensions of an input batch (4 for images: N, C, H, W).", unit="dims"),
        _m("data.input_mean", "data_stats", "Mean of all input elements."),
        _m("data.input_std", "data_stats", "Standard deviation of all input elements."),
        _m("data.input_abs_max", "data_stats", "Largest absolute input element."),
        _m("data.input_min", "data_stats", "Smallest input element."),
        _m("data.input_max", "data_stats", "Largest input element."),
        _m("data.feature_mean_abs_max", "data_stats", "Largest absolute per-feature mean (features: channels of images, last dim otherwise)."),
        _m("data.feature_std_max", "data_stats", "Largest per-feature standard deviation."),
        _m("data.feature_scale_ratio", "data_stats", "Largest over smallest per-feature standard deviation, constant features left out.", unit="x"),
        _m("data.input_nonfinite_frac", "data_stats", "Fraction of input elements that are NaN or infinite.", unit="fraction"),
        _m("data.target_nonfinite_frac", "data_stats", "Fraction of target elements that are NaN or infinite.", unit="fraction"),
        _m("data.num_classes_seen", "data_stats", "Distinct class labels seen in the training data.", unit="classes"),
        _m("data.label_min", "data_stats", "Smallest class label in the training data."),
        _m("data.label_max", "data_stats", "Largest class label in the training data."),
        _m("data.labels_out_of_range", "data_stats", "Labels outside [0, number of model outputs).", unit="samples"),
        _m("data.class_ratio", "data_stats", "Count of the largest class over count of the smallest class.", unit="x"),
        _m("data.majority_class_frac", "data_stats", "Share of the most frequent class.", unit="fraction"),
        _m("data.target_std", "data_stats", "Standard deviation of regression targets."),
        _m("data.target_abs_mean", "data_stats", "Absolute mean of regression targets."),
        _m("class.count", "data_stats", "Training samples of this class.", scope="class", unit="samples"),
        _m("class.frac", "data_stats", "Share of training samples in this class.", scope="class", unit="fraction"),
        _m("class.ratio_to_max", "data_stats", "Largest class count over this class's count.", scope="class", unit="x"),
        # loss at initialisation
        _m("init.loss", "init_loss", "Mean loss of the untrained model over a few batches."),
        _m("init.expected_loss", "init_loss", "Loss of a model predicting uniformly: ln(C) for C classes, ln 2 for binary."),
        _m("init.loss_ratio", "init_loss", "Initial loss over its expected value.", unit="x"),
        _m("init.nonfinite", "init_loss", "The loss at initialisation is NaN or infinite.", kind="bool"),
        # gradient flow
        _m("grad.steps", "gradient_flow", "Training steps measured.", unit="steps"),
        _m("grad.nonfinite", "gradient_flow", "Some gradient was NaN or infinite during the burst.", kind="bool"),
        _m("grad.total_norm_max", "gradient_flow", "Largest global gradient norm over the burst."),
        _m("grad.total_norm_median", "gradient_flow", "Median global gradient norm over the burst."),
        _m("grad.depth_ratio", "gradient_flow", "Median RMS gradient of the first layer over that of the last layer.", unit="x"),
        _m("grad.first_layer", "gradient_flow", "First parametrised layer in forward order.", kind="text"),
        _m("grad.last_layer", "gradient_flow", "Last parametrised layer in forward order.", kind="text"),
        _m("grad.min_rms_layer", "gradient_flow", "Layer with the smallest median RMS gradient.", kind="text"),
        _m("grad.norm", "gradient_flow", "Median gradient norm of this layer's parameters over the burst.", scope="layer"),
        _m("grad.norm_max", "gradient_flow", "Largest gradient norm of this layer's parameters over the burst.", scope="layer"),
        _m("grad.rms", "gradient_flow", "Median root-mean-square gradient per parameter element.", scope="layer"),
        _m("grad.rms_to_last", "gradient_flow", "This layer's median RMS gradient over the last layer's.", scope="layer", unit="x"),
        # activation health
        _m("act.layers_measured", "activation_health", "Activation layers measured.", unit="layers"),
        _m("act.dead_layers", "activation_health", "ReLU-family layers with more than half their units dead.", unit="layers"),
        _m("act.saturated_layers", "activation_health", "Sigmoid/tanh layers with more than half their outputs saturated.", unit="layers"),
        _m("act.kind", "activation_health", "Activation type of this layer (relu, sigmoid, tanh, ...).", scope="layer", kind="text"),
        _m("act.units", "activation_health", "Units (channels or features) in this activation layer.", scope="layer", unit="units"),
        _m("act.dead_frac", "activation_health", "Fraction of units active on fewer than 1% of inputs (ReLU family).", scope="layer", unit="fraction"),
        _m("act.active_frac", "activation_health", "Mean fraction of outputs that are positive (ReLU family).", scope="layer", unit="fraction"),
        _m("act.saturated_frac", "activation_health", "Fraction of outputs in the flat tails (sigmoid <0.01 or >0.99, |tanh| >0.99).", scope="layer", unit="fraction"),
        # train/val burst
        _m("train.steps", "train_val", "Optimizer steps taken in the burst.", unit="steps"),
        _m("loss.nonfinite", "train_val", "The training loss became NaN or infinite.", kind="bool"),
        _m("loss.first_nonfinite_step", "train_val", "First step with a non-finite loss (-1 when none).", unit="step"),
        _m("loss.train_start", "train_val", "Mean training loss over the first steps of the burst."),
        _m("loss.train_end", "train_val", "Mean training loss over the last steps of the burst."),
        _m("loss.train_rel_drop", "train_val", "Relative drop of training loss over the burst: (start - end) / start.", unit="fraction"),
        _m("loss.train_trend_p", "train_val", "One-sided p-value that the training loss has no downward trend (Mann-Kendall).", unit="p"),
        _m("loss.val_start", "train_val", "Validation loss at the first evaluation."),
        _m("loss.val_end", "train_val", "Validation loss at the last evaluation."),
        _m("loss.val_min", "train_val", "Lowest validation loss seen."),
        _m("loss.val_rise", "train_val", "Last validation loss over the lowest one.", unit="x"),
        _m("loss.gap_ratio", "train_val", "Last validation loss over last training-set loss (both in eval mode).", unit="x"),
        _m("acc.train_end", "train_val", "Training-set accuracy at the last evaluation (classification).", unit="fraction"),
        _m("acc.val_end", "train_val", "Validation accuracy at the last evaluation (classification).", unit="fraction"),
        _m("acc.gap", "train_val", "Training-set accuracy minus validation accuracy at the last evaluation.", unit="fraction"),
    ]
}

# Series a rule's `evidence` may name, and that the report charts.
SERIES: dict[str, str] = {
    "loss.train": "Training loss per step.",
    "loss.val": "Validation loss per evaluation.",
    "loss.train_eval": "Training-set loss in eval mode per evaluation.",
    "acc.train": "Training-set accuracy per evaluation.",
    "acc.val": "Validation accuracy per evaluation.",
    "grad.norm_by_layer": "Median gradient norm per layer, in forward order.",
    "grad.rms_by_layer": "Median RMS gradient per layer, in forward order.",
    "grad.total_norm": "Global gradient norm per step.",
    "act.dead_frac_by_layer": "Dead-unit fraction per ReLU-family layer.",
    "act.saturated_frac_by_layer": "Saturated-output fraction per sigmoid/tanh layer.",
    "data.class_counts": "Training samples per class.",
    "data.feature_std": "Standard deviation of each input feature (channel for images).",
    "init.loss": "Initial loss against its expected value.",
}


class Series(BaseModel):
    """A sequence of values: a curve over steps, or values over named categories (layers, classes)."""

    x: list[Union[float, int, str]]
    y: list[Optional[float]]
    x_label: str = "step"
    y_label: str = ""
    log_y: bool = False
    reference: Optional[float] = None  # a horizontal line: an expected value or a threshold


class ProbeStatus(str, Enum):
    ran = "ran"
    skipped = "skipped"
    failed = "failed"


class ProbeRecord(BaseModel):
    name: str
    status: ProbeStatus
    reason: str = ""  # why it was skipped or how it failed
    duration_s: float = 0.0
    measures: list[str] = Field(default_factory=list)
    location: Optional[str] = None  # "file:line" in the user's code when a failure points there


class ErrorRecord(BaseModel):
    """A failure the collector met: where, what, and what to do about it."""

    kind: Literal["load", "no_model", "forward", "probe", "timeout", "crash", "internal"]
    message: str
    hint: str = ""
    file: Optional[str] = None
    line: Optional[int] = None
    probe: Optional[str] = None
    traceback: str = ""  # shown only with -v


class SetupInfo(BaseModel):
    target: str = ""
    model_class: str = ""
    task: str = ""
    loss: str = ""
    optimizer: str = ""
    batch_size: int = 0
    device: str = "cpu"
    defaults_used: list[str] = Field(default_factory=list)  # e.g. "optimizer: Adam(lr=1e-3)"
    notes: list[str] = Field(default_factory=list)


class Metrics(BaseModel):
    """Everything the collector measured, JSON-serialisable. Missing names were not measured."""

    schema_version: int = SCHEMA_VERSION
    target: str = ""
    seed: int = 0
    budget: str = "standard"
    duration_s: float = 0.0
    setup: SetupInfo = Field(default_factory=SetupInfo)
    scalars: dict[str, Value] = Field(default_factory=dict)
    layers: dict[str, dict[str, Value]] = Field(default_factory=dict)  # layer -> name -> value
    layer_types: dict[str, str] = Field(default_factory=dict)  # layer -> module class name
    classes: dict[str, dict[str, Value]] = Field(default_factory=dict)  # class label -> name -> value
    series: dict[str, Series] = Field(default_factory=dict)
    probes: list[ProbeRecord] = Field(default_factory=list)
    errors: list[ErrorRecord] = Field(default_factory=list)

    def probe(self, name: str) -> Optional[ProbeRecord]:
        return next((p for p in self.probes if p.name == name), None)
