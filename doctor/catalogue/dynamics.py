"""Dynamic probes beyond the training burst: range test, one-batch overfit, batch independence, curve tests, custom steps."""

from __future__ import annotations

from doctor.catalogue import MetricDef, metric

METRICS: list[MetricDef] = [
    # batch independence (eval mode, gradient of one sample's output with respect to the batch)
    metric("batch.samples", "batch_independence", "Samples in the batch that was differentiated.", unit="samples"),
    metric("batch.through_embedding", "batch_independence", "The inputs are token ids, so the embedding outputs were differentiated instead.", kind="bool"),
    metric("batch.dependence", "batch_independence", "Share of the gradient of one sample's output that lands on the other samples' inputs (0 when samples are independent).", unit="fraction"),
    # learning-rate range test
    metric("lr.steps", "lr_range", "Steps the range test ran before it ended or diverged.", unit="steps"),
    metric("lr.sweep_low", "lr_range", "Lowest learning rate of the sweep."),
    metric("lr.sweep_high", "lr_range", "Highest learning rate the sweep would have reached."),
    metric("lr.loss_start", "lr_range", "Mean loss over the first steps of the sweep, where the rate is tiny."),
    metric("lr.loss_min", "lr_range", "Lowest smoothed loss of the sweep."),
    metric("lr.min_loss_ratio", "lr_range", "Lowest smoothed loss over the starting loss: how deep the valley is.", unit="x"),
    metric("lr.best", "lr_range", "Learning rate at the lowest smoothed loss (the bottom of the valley)."),
    metric("lr.suggested", "lr_range", "Suggested learning rate: a tenth of the rate at the bottom of the valley."),
    metric("lr.configured_ratio", "lr_range", "Configured learning rate over the suggested one.", unit="x"),
    metric("lr.diverge", "lr_range", "Learning rate at which the smoothed loss rose to 4x its lowest value (or became NaN)."),
    metric("lrc.steps", "lr_compare", "Steps of each of the two comparison runs.", unit="steps"),
    metric("lrc.factor", "lr_compare", "The higher rate of the comparison, as a multiple of the configured one.", unit="x"),
    metric("lrc.rate", "lr_compare", "The higher rate of the comparison."),
    metric("lrc.loss_start", "lr_compare", "Loss on the held training batches at the initial weights."),
    metric("lrc.loss_configured", "lr_compare", "Loss on the held batches after the run at the configured rate."),
    metric("lrc.loss_higher", "lr_compare", "Loss on the held batches after the run at the higher rate."),
    metric("lrc.descent_configured", "lr_compare", "Share of the starting loss the run at the configured rate removed.", unit="fraction"),
    metric("lrc.descent_higher", "lr_compare", "Share of the starting loss the run at the higher rate removed.", unit="fraction"),
    metric("lr.configured_diverges", "lr_range", "The configured learning rate is at or above the rate where the sweep diverged.", kind="bool"),
    metric("lr.at_edge", "lr_range", "The loss was still falling at the top of the sweep, so the valley was not found.", kind="bool"),
    # overfit one batch
    metric("ovf.steps", "overfit_batch", "Steps spent on the one batch.", unit="steps"),
    metric("ovf.samples", "overfit_batch", "Samples in the batch to memorise.", unit="samples"),
    metric("ovf.nonfinite", "overfit_batch", "The loss on the one batch became NaN or infinite.", kind="bool"),
    metric("ovf.loss_start", "overfit_batch", "Loss on the batch at the first step."),
    metric("ovf.loss_end", "overfit_batch", "Mean loss on the batch over the last steps."),
    metric("ovf.loss_ratio", "overfit_batch", "Final loss on the batch over its starting loss (near 0 when memorised).", unit="x"),
    # update / weight ratio (first steps of the one-batch run)
    metric("upd.steps", "update_ratio", "Steps whose updates were measured.", unit="steps"),
    metric("upd.ratio_median", "update_ratio", "Median over layers of the per-step update norm over the weight norm.", unit="x"),
    metric("upd.ratio_max", "update_ratio", "Largest per-layer update/weight ratio.", unit="x"),
    metric("upd.max_layer", "update_ratio", "Layer with the largest update/weight ratio.", kind="text"),
    metric("upd.ratio_min", "update_ratio", "Smallest per-layer update/weight ratio among layers that moved.", unit="x"),
    metric("upd.min_layer", "update_ratio", "Layer with the smallest update/weight ratio.", kind="text"),
    metric("upd.min_to_median", "update_ratio", "Smallest per-layer update/weight ratio over the median one.", unit="x"),
    metric("upd.ratio", "update_ratio", "Median over steps of this layer's update norm over its weight norm.", scope="layer", unit="x"),
    metric("upd.ratio_to_median", "update_ratio", "This layer's update/weight ratio over the median layer's.", scope="layer", unit="x"),
    # unchanged weights (same steps)
    metric("unchanged.trainable", "unchanged_weights", "Trainable parameter tensors (requires_grad=True) watched.", unit="tensors"),
    metric("unchanged.params", "unchanged_weights", "Trainable parameter tensors the gradient never reached, or that the optimizer cannot move.", unit="tensors"),
    metric("unchanged.no_grad", "unchanged_weights", "Trainable parameter tensors autograd never reached (.grad stayed None): detached or unused.", unit="tensors"),
    metric("unchanged.not_moved", "unchanged_weights", "Trainable parameter tensors that get a gradient but are in no optimizer group (or one with rate 0).", unit="tensors"),
    metric("unchanged.names", "unchanged_weights", "Names of the unchanged parameter tensors (the first few).", kind="text"),
    # train mode against eval mode on the memorised batch
    metric("te.loss_train_mode", "train_eval", "Loss on the memorised batch in train mode, dropout off, BatchNorm statistics re-estimated on the batch."),
    metric("te.loss_eval_mode", "train_eval", "Loss on the same batch, same weights, in eval mode."),
    metric("te.loss_gap", "train_eval", "|eval-mode loss - train-mode loss| over the batch's loss at the first step.", unit="x"),
    metric("te.loss_ratio", "train_eval", "Larger over smaller of the two losses.", unit="x"),
    # prediction collapse after the training burst
    metric("pred.samples", "prediction_collapse", "Validation samples predicted.", unit="samples"),
    metric("pred.top_frac", "prediction_collapse", "Share of the most common predicted class (per label for binary outputs: the worst label).", unit="fraction"),
    metric("pred.top_class", "prediction_collapse", "The most common predicted class.", kind="text"),
    metric("pred.label_top_frac", "prediction_collapse", "Share of the most common true label among the same samples.", unit="fraction"),
    metric("pred.classes_predicted", "prediction_collapse", "Distinct classes the model predicted.", unit="classes"),
    metric("pred.classes_labelled", "prediction_collapse", "Distinct labels among the same samples.", unit="classes"),
    metric("pred.std_ratio", "prediction_collapse", "Spread of regression predictions across samples over the spread of the targets.", unit="x"),
    # statistical tests on the burst's curves
    metric("curve.early_down_p", "curve_tests", "One-sided Mann-Kendall p-value of no downward trend over the first half of the training loss.", unit="p"),
    metric("curve.late_down_p", "curve_tests", "One-sided Mann-Kendall p-value of no downward trend over the second half.", unit="p"),
    metric("curve.late_up_p", "curve_tests", "One-sided Mann-Kendall p-value of no upward trend over the second half.", unit="p"),
    metric("curve.late_rel_drop", "curve_tests", "Fall of the training loss over the second half (Theil-Sen slope times its length) as a fraction of that half's median.", unit="fraction"),
    metric("curve.late_level", "curve_tests", "Mean training loss over the second half over the starting loss.", unit="x"),
    metric("curve.rise", "curve_tests", "Smoothed training loss at the end over its smoothed minimum (running median of 5).", unit="x"),
    metric("curve.best_at", "curve_tests", "Where the smoothed training loss was lowest, as a fraction of the burst.", unit="fraction"),
    metric("curve.plateau_from", "curve_tests", "First step (on a grid of 5) from which the rest of the training loss shows no downward trend (Mann-Kendall p > 0.1) or its head and tail differ by less than 10% of its level.", unit="step"),
    metric("curve.spikes", "curve_tests", "Jumps above twice the median of the 5 steps before that also undo a quarter of the fall so far.", unit="spikes"),
    metric("curve.late_spikes", "curve_tests", "Spikes (as in curve.spikes) in the second half of the burst: an "
           "instability that has not died out.", unit="spikes"),
    metric("curve.spike_max", "curve_tests", "Largest training loss over the median of the 5 steps before it.", unit="x"),
    metric("curve.gap_up_p", "curve_tests", "One-sided Mann-Kendall p-value of no upward trend of validation minus training-set loss.", unit="p"),
    metric("curve.val_up_p", "curve_tests", "One-sided Mann-Kendall p-value of no upward trend of the validation loss over its later evaluations.", unit="p"),
    # the target's own train_step
    metric("step.defined", "custom_step", "The target defines its own train_step.", kind="bool"),
    metric("step.calls", "custom_step", "Calls of the target's train_step that were watched.", unit="calls"),
    metric("step.optimizer_steps", "custom_step", "optimizer.step() calls seen during them.", unit="steps"),
    metric("step.backward_passes", "custom_step", "Backward passes that reached the parameters.", unit="passes"),
    metric("step.weights_moved", "custom_step", "Some trainable weight changed over the calls.", kind="bool"),
    metric("step.empty_steps", "custom_step", "Optimizer steps taken with every gradient zero or absent.", unit="steps"),
    metric("step.clip_calls", "custom_step", "Calls of clip_grad_norm_ / clip_grad_value_.", unit="calls"),
    metric("step.clip_ineffective", "custom_step", "Clipping calls not between a backward pass and the optimizer step that uses it.", unit="calls"),
    metric("step.grad_multiple", "custom_step", "Norm of the gradient an optimizer step is given over the norm of doctor's loss gradient on the batches since the previous step (their sample-weighted mean), median over steps: about 1 when the step averages its micro-batches.", unit="x"),
    metric("step.backwards_per_step", "custom_step", "Backward passes between two optimizer steps (median): more than 1 is gradient accumulation.", unit="passes"),
    metric("step.calls_per_step", "custom_step", "Calls of train_step per optimizer step (median).", unit="calls"),
    metric("step.stale_grad_ratio", "custom_step", "Norm of the gradient left from earlier steps over the new gradient, at the first backward after a step.", unit="x"),
]

SERIES: dict[str, str] = {
    "lr.range": "Training loss against the learning rate in the range test.",
    "ovf.loss": "Loss per step while memorising one small batch.",
    "upd.ratio_by_layer": "Per-step update norm over weight norm, per layer.",
    "pred.class_counts": "Validation samples per predicted class after the training burst.",
}
