"""Data metrics beyond the basic statistics: leakage, train/validation shift, order, constants, targets, timing."""

from __future__ import annotations

from doctor.catalogue import MetricDef, metric

LEAK, SHIFT, ORDER, CONST, TARGETS, PIPE = (
    "data_leakage", "data_shift", "data_order", "data_constant", "data_targets", "data_pipeline")

METRICS: list[MetricDef] = [
    # identical samples in training and validation data (hashes of each sample's bytes)
    metric("data.leak_train_samples", LEAK, "Training samples hashed.", unit="samples"),
    metric("data.leak_val_samples", LEAK, "Validation samples hashed.", unit="samples"),
    metric("data.leak_val_in_train", LEAK, "Validation samples whose inputs appear, byte for byte, among the training samples hashed.", unit="samples"),
    metric("data.leak_frac", LEAK, "Share of the validation samples hashed that also appear among the training samples.", unit="fraction"),
    metric("data.train_repeat_frac", LEAK, "Share of the second half of the training samples hashed that also appear in the first half: how often the data repeats by itself.", unit="fraction"),
    # training against validation statistics
    metric("data.shift_val_samples", SHIFT, "Validation samples compared with the training samples.", unit="samples"),
    metric("data.shift_smd_max", SHIFT, "Largest standardised mean difference of an input feature between training and validation (difference of means over the pooled standard deviation).", unit="sd"),
    metric("data.shift_smd_feature", SHIFT, "The input feature with the largest standardised mean difference (channel for images).", kind="text"),
    metric("data.shift_smd_p", SHIFT, "Two-sample z-test p-value of that feature's mean difference, Bonferroni-corrected over the features.", unit="p"),
    metric("data.shift_std_ratio_max", SHIFT, "Largest ratio between an input feature's standard deviations in the two splits (larger over smaller).", unit="x"),
    metric("data.shift_std_p", SHIFT, "F-test p-value of that ratio, Bonferroni-corrected over the features.", unit="p"),
    metric("data.shift_ks_max", SHIFT, "Largest two-sample Kolmogorov-Smirnov statistic between the splits' per-sample input means and standard deviations."),
    metric("data.shift_ks_p", SHIFT, "P-value of that Kolmogorov-Smirnov test, Bonferroni-corrected over the two summaries.", unit="p"),
    metric("data.shift_label_tv", SHIFT, "Total variation distance between the training and validation class shares (half the sum of absolute differences).", unit="fraction"),
    metric("data.shift_label_p", SHIFT, "Chi-square test p-value that both splits share one class distribution.", unit="p"),
    metric("data.shift_target_smd", SHIFT, "Largest standardised mean difference of a regression target column between the splits.", unit="sd"),
    metric("data.shift_target_p", SHIFT, "Two-sample z-test p-value of that target difference, Bonferroni-corrected over the columns.", unit="p"),
    # order of the training loader
    metric("data.order_samples", ORDER, "Training labels followed in the loader's order.", unit="samples"),
    metric("data.order_change_ratio", ORDER, "Label changes between consecutive training samples over the number expected in shuffled order.", unit="x"),
    metric("data.order_change_z", ORDER, "Standard score of the label changes against shuffled orders of the same labels (negative: fewer changes).", unit="sd"),
    metric("data.order_longest_run", ORDER, "Longest stretch of consecutive training samples with one label.", unit="samples"),
    metric("data.order_longest_run_batches", ORDER, "That stretch in batches.", unit="batches"),
    metric("data.order_run_label", ORDER, "The label of that stretch.", kind="text"),
    # constant inputs
    metric("data.distinct_inputs", CONST, "Distinct inputs among the training samples hashed.", unit="samples"),
    metric("data.distinct_input_frac", CONST, "Distinct inputs over training samples hashed.", unit="fraction"),
    metric("data.input_features", CONST, "Input features examined (channels for images, last dimension otherwise; float inputs only).", unit="features"),
    metric("data.constant_features", CONST, "Input features with one value across all training samples examined.", unit="features"),
    metric("data.constant_feature_frac", CONST, "Share of the input features that never vary.", unit="fraction"),
    # regression targets
    metric("data.target_columns", TARGETS, "Regression target columns.", unit="columns"),
    metric("data.target_std_max", TARGETS, "Largest standard deviation of a regression target column."),
    metric("data.target_mean_abs_max", TARGETS, "Largest absolute mean of a regression target column."),
    metric("data.target_scale_ratio", TARGETS, "Largest over smallest standard deviation of the target columns (constant columns left out).", unit="x"),
    # input pipeline timing
    metric("data.loader_first_batch_s", PIPE, "Seconds until the training loader's first batch (worker start-up included).", unit="s"),
    metric("data.loader_batch_s", PIPE, "Median seconds to get one more batch from the training loader onto the device.", unit="s"),
    metric("data.step_s", PIPE, "Seconds of the fastest of several training steps on batches already on the device.", unit="s"),
    metric("data.loader_wait_ratio", PIPE, "Time to load a sample over time to train on it: above 1 the device waits for data.", unit="x"),
    metric("data.loader_workers", PIPE, "Worker processes of the training DataLoader (0: loading runs in the training process).", unit="workers"),
]

SERIES: dict[str, str] = {
    "data.shift_smd_by_feature": "Standardised mean difference between training and validation, per input feature.",
    "data.order_batch_majority": "Share of the most common label in each consecutive training batch.",
    "data.loader_timing": "Milliseconds per batch: loading it from the training loader against a training step.",
}
