"""The symptom vocabulary (DESIGN §4): the stable `symptom` field of every finding."""

STRUCTURE = (
    "double_softmax", "loss_output_mismatch", "missing_nonlinearity", "output_activation",
    "output_size_mismatch", "unregistered_parameters", "frozen_parameters",
    "poor_initialization", "saturating_architecture", "batchnorm_batch_size",
    "redundant_bias", "hyperparameter_range",
)
DATA = (
    "class_imbalance", "unnormalized_inputs", "unscaled_targets", "invalid_values",
    "label_range", "data_leakage", "distribution_shift", "unshuffled_data",
    "constant_inputs", "dataloader_bottleneck",
)
DYNAMICS = (
    "nan_loss", "exploding_gradients", "vanishing_gradients", "dead_relu",
    "saturated_activation", "loss_not_decreasing", "unstable_loss", "lr_too_high",
    "lr_too_low", "cannot_overfit_batch", "overfitting", "underfitting",
    "prediction_collapse", "unchanged_weights", "update_ratio", "batch_dependence",
    "train_eval_discrepancy", "gradient_accumulation", "init_loss",
)
# A crash in the user's code whose cause is known (rules/crash/): the exception becomes the finding.
CRASH = (
    "dtype_mismatch", "no_gradient", "inplace_modification", "graph_reuse", "device_mismatch",
)
# A torch.distributed run under doctor.watch (rules/distributed/): what the ranks see and hold.
DISTRIBUTED = ("distributed_data", "distributed_sync")

# Deployment readiness (--deploy, rules/deploy/): what changes between the trained model and the deployed one.
DEPLOY = ("export_failure", "export_mismatch", "eval_nondeterminism", "precision_drift")

SYMPTOMS: frozenset[str] = frozenset(STRUCTURE + DATA + DYNAMICS + CRASH + DISTRIBUTED + DEPLOY)
