"""Core metrics: the setup, module-tree counts, data statistics, initial loss, the training burst."""

from __future__ import annotations

from doctor.catalogue import MetricDef, metric

# Sorted by probe. Layer-scoped names hold one value per layer (Metrics.layers); class-scoped
# ones one value per class (Metrics.classes).
METRICS: list[MetricDef] = [
    # setup: what the target resolved to
    metric("setup.has_train_data", "setup", "The target provides training data.", kind="bool"),
    metric("setup.has_val_data", "setup", "The target provides validation data.", kind="bool"),
    metric("setup.is_classification", "setup", "The task is single-label classification.", kind="bool"),
    metric("setup.num_outputs", "setup", "Size of the model's output's last dimension.", unit="units"),
    metric("setup.num_params", "setup", "Trainable parameters in the model.", unit="params"),
    metric("setup.lr", "setup", "Learning rate of the optimizer's first parameter group (at its scheduler's peak when "
           "that starts with a warm-up)."),
    metric("setup.lr_raised", "setup", "The optimizer's scheduler starts below its peak rate (a warm-up); doctor's "
           "probes train at the peak, this many times the step-0 rate.", unit="x"),
    metric("setup.adaptive_optimizer", "setup", "The optimizer scales each step by a running gradient size (Adam, "
           "AdamW, RMSprop, Adagrad and their kin), so a step moves each weight by about the rate.", kind="bool"),
    metric("setup.task", "setup", "The task: classification, binary, multilabel or regression.", kind="text"),
    metric("setup.last_batch_rows", "setup", "Samples in the last batch of each epoch of the training loader (its "
                                              "dataset size modulo the batch size, unless drop_last).", unit="samples"),
    metric("epoch.last_batch_trains", "setup", "--verify-fixes (drop-last): one training step on an epoch's last "
           "batch, at its size, completed without raising.", kind="bool"),
    metric("fix.val_accuracy", "setup", "--verify-fixes (a loss swapped): validation accuracy after a standard "
           "burst, with the setup as it was or as fixed.", unit="fraction"),
    metric("fix.val_auc", "setup", "--verify-fixes (a loss swapped): mean per-label ROC AUC on validation after a "
           "standard burst, with the setup as it was or as fixed.", unit="fraction"),
    metric("setup.train_samples", "setup", "Samples the training loader draws per epoch.", unit="samples"),
    metric("setup.loader_batch_size", "setup", "The training loader's batch size.", unit="samples"),
    metric("setup.bn_one_value_layers", "setup", "BatchNorm layers that see one value per channel per sample (after "
                                                 "global pooling, or on (N, C) features): a batch of one sample "
                                                 "makes them raise in train mode.", unit="layers"),
    metric("setup.bn_one_value_at", "setup", "The first such BatchNorm layer.", kind="text"),
    metric("setup.step_s", "setup", "Seconds of the first forward and backward pass at the batch size (warm-up "
                                    "included): what the probes' work is fitted to.", unit="s"),
    metric("setup.time_cut", "setup", "The budget's steps were cut to fit its time (the report's notes say "
                                      "what was cut).", kind="bool"),
    metric("setup.count_loss", "setup", "The loss models counts on their own scale (PoissonNLLLoss).", kind="bool"),
    # data statistics
    metric("data.samples", "data_stats", "Training samples examined.", unit="samples"),
    metric("data.input_ndim", "data_stats", "Dimensions of an input batch (4 for images: N, C, H, W).", unit="dims"),
    metric("data.input_mean", "data_stats", "Mean of all input elements."),
    metric("data.input_std", "data_stats", "Standard deviation of all input elements."),
    metric("data.input_abs_max", "data_stats", "Largest absolute input element."),
    metric("data.input_min", "data_stats", "Smallest input element."),
    metric("data.input_max", "data_stats", "Largest input element."),
    metric("data.feature_mean_abs_max", "data_stats", "Largest absolute per-feature mean (features: channels of images, last dim otherwise)."),
    metric("data.feature_std_max", "data_stats", "Largest per-feature standard deviation."),
    metric("data.feature_scale_ratio", "data_stats", "Largest over smallest per-feature standard deviation, constant features left out.", unit="x"),
    metric("data.input_nonfinite_frac", "data_stats", "Fraction of input elements that are NaN or infinite.", unit="fraction"),
    metric("data.target_nonfinite_frac", "data_stats", "Fraction of target elements that are NaN or infinite.", unit="fraction"),
    metric("data.num_classes_seen", "data_stats", "Distinct class labels seen in the training data.", unit="classes"),
    metric("data.label_min", "data_stats", "Smallest class label in the training data."),
    metric("data.label_max", "data_stats", "Largest class label in the training data."),
    metric("data.labels_out_of_range", "data_stats", "Labels outside [0, number of model outputs).", unit="samples"),
    metric("data.class_ratio", "data_stats", "Count of the largest class over count of the smallest class.", unit="x"),
    metric("data.majority_class_frac", "data_stats", "Share of the most frequent class.", unit="fraction"),
    metric("data.imbalance_compensated", "data_stats", "Training already compensates for unequal classes: the loss "
           "weights them (weight=, pos_weight=) or the loader samples with a WeightedRandomSampler.", kind="bool"),
    metric("data.imbalance_compensation", "data_stats", "How training compensates for unequal classes, in words "
           "(empty when it does not).", kind="text"),
    metric("data.train_resampled", "data_stats", "The training loader draws samples with a WeightedRandomSampler, "
           "so its batches have the class mix the weights give, not the data set's.", kind="bool"),
    metric("data.target_std", "data_stats", "Standard deviation of regression targets."),
    metric("data.target_abs_mean", "data_stats", "Absolute mean of regression targets."),
    metric("class.count", "data_stats", "Training samples of this class.", scope="class", unit="samples"),
    metric("class.frac", "data_stats", "Share of training samples in this class.", scope="class", unit="fraction"),
    metric("class.ratio_to_max", "data_stats", "Largest class count over this class's count.", scope="class", unit="x"),
    # loss at initialisation
    metric("init.loss", "init_loss", "Mean loss of the untrained model over a few batches."),
    metric("init.expected_loss", "init_loss", "Loss of a model predicting uniformly: ln(C) for C classes, ln 2 for binary."),
    metric("init.loss_ratio", "init_loss", "Initial loss over its expected value.", unit="x"),
    metric("init.nonfinite", "init_loss", "The loss at initialisation is NaN or infinite.", kind="bool"),
    # gradient flow
    metric("grad.steps", "gradient_flow", "Training steps measured.", unit="steps"),
    metric("grad.nonfinite", "gradient_flow", "Some gradient was NaN or infinite during the burst.", kind="bool"),
    metric("grad.total_norm_max", "gradient_flow", "Largest global gradient norm over the burst."),
    metric("grad.total_norm_median", "gradient_flow", "Median global gradient norm over the burst."),
    metric("grad.depth_ratio", "gradient_flow", "Median RMS gradient of the first layer over that of the last layer.", unit="x"),
    metric("grad.first_layer", "gradient_flow", "First parametrised layer in forward order.", kind="text"),
    metric("grad.last_layer", "gradient_flow", "Last parametrised layer in forward order.", kind="text"),
    metric("grad.min_rms_layer", "gradient_flow", "Layer with the smallest median RMS gradient.", kind="text"),
    metric("grad.norm", "gradient_flow", "Median gradient norm of this layer's parameters over the burst.", scope="layer"),
    metric("grad.norm_max", "gradient_flow", "Largest gradient norm of this layer's parameters over the burst.", scope="layer"),
    metric("grad.rms", "gradient_flow", "Median root-mean-square gradient per parameter element.", scope="layer"),
    metric("grad.rms_to_last", "gradient_flow", "This layer's median RMS gradient over the last layer's.", scope="layer", unit="x"),
    # activation health
    metric("act.layers_measured", "activation_health", "Activation layers measured.", unit="layers"),
    metric("act.dead_layers", "activation_health", "ReLU-family layers with more than half their units dead.", unit="layers"),
    metric("act.saturated_layers", "activation_health", "Sigmoid/tanh layers with more than half their outputs saturated.", unit="layers"),
    metric("act.kind", "activation_health", "Activation type of this layer (relu, sigmoid, tanh, ...).", scope="layer", kind="text"),
    metric("act.units", "activation_health", "Units (channels or features) in this activation layer.", scope="layer", unit="units"),
    metric("act.dead_frac", "activation_health", "Fraction of units active on fewer than 0.1% of inputs (ReLU family).", scope="layer", unit="fraction"),
    metric("act.active_frac", "activation_health", "Mean fraction of outputs that are positive (ReLU family).", scope="layer", unit="fraction"),
    metric("act.saturated_frac", "activation_health", "Fraction of outputs in the flat tails (sigmoid <0.01 or >0.99, |tanh| >0.99).", scope="layer", unit="fraction"),
    # train/val burst
    metric("train.steps", "train_val", "Optimizer steps taken in the burst.", unit="steps"),
    metric("loss.nonfinite", "train_val", "The training loss became NaN or infinite.", kind="bool"),
    metric("loss.first_nonfinite_step", "train_val", "First step with a non-finite loss (-1 when none).", unit="step"),
    metric("loss.train_start", "train_val", "Mean training loss over the first steps of the burst."),
    metric("loss.train_end", "train_val", "Mean training loss over the last steps of the burst."),
    metric("loss.train_rel_drop", "train_val", "Relative drop of training loss over the burst: (start - end) / start.", unit="fraction"),
    metric("loss.train_trend_p", "train_val", "One-sided p-value that the training loss has no downward trend (Mann-Kendall).", unit="p"),
    metric("loss.val_start", "train_val", "Validation loss at the first evaluation."),
    metric("loss.val_end", "train_val", "Validation loss at the last evaluation."),
    metric("loss.val_min", "train_val", "Lowest validation loss seen."),
    metric("loss.val_rise", "train_val", "Last validation loss over the lowest one.", unit="x"),
    metric("loss.gap_ratio", "train_val", "Last validation loss over last training-set loss (both in eval mode).", unit="x"),
    metric("acc.train_end", "train_val", "Training-set accuracy at the last evaluation (classification).", unit="fraction"),
    metric("acc.val_end", "train_val", "Validation accuracy at the last evaluation (classification).", unit="fraction"),
    metric("acc.gap", "train_val", "Training-set accuracy minus validation accuracy at the last evaluation.", unit="fraction"),
]

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
