"""Static facts (probe `static`): the module tree, the traced graph, the loss and optimizer as built, the source.

Names ending in `_at` hold a *subject*: a module path, or a call such as "F.softmax in Net.forward".
A rule names one in its `location:` and the judge points the finding at that subject's line in the
user's file (Metrics.layer_sites).
"""

from __future__ import annotations

from doctor.catalogue import MetricDef, metric


def _m(name: str, doc: str, **kw) -> MetricDef:
    return metric(f"static.{name}", "static", doc, **kw)


def _at(name: str, what: str) -> MetricDef:
    return _m(f"{name}_at", f"Where {what}: a module path or a call, located in the user's file.", kind="text")


METRICS: list[MetricDef] = [
    # module tree
    _m("activation_layers", "Activation modules in the model.", unit="layers"),
    _m("relu_layers", "ReLU-family activation modules (ReLU, ReLU6).", unit="layers"),
    _m("saturating_activations", "Sigmoid and Tanh modules in the model.", unit="layers"),
    _m("normalization_layers", "BatchNorm, LayerNorm, GroupNorm and similar modules.", unit="layers"),
    _m("param_layers", "Modules that own parameters directly.", unit="layers"),
    _m("depth", "Parametrised layers in the model.", unit="layers"),
    _m("batchnorm_layers", "BatchNorm modules in the model.", unit="layers"),
    _at("batchnorm", "the first BatchNorm layer is"),
    _m("unregistered_count", "Modules with parameters, and trainable tensors, kept in plain lists, dicts or attributes "
                             "where nn.Module does not register them.", unit="objects"),
    _m("unregistered_params", "Parameters inside those unregistered modules and tensors.", unit="params"),
    _at("unregistered", "the first unregistered module or tensor is stored"),
    _m("total_params", "Parameters in the model, frozen ones included.", unit="params"),
    _m("trainable_params", "Parameters with requires_grad=True.", unit="params"),
    _m("frozen_params", "Parameters with requires_grad=False.", unit="params"),
    _m("output_layer", "The weight layer nearest the output.", kind="text"),
    _m("output_layer_frozen", "The output layer is frozen while other layers train.", kind="bool"),
    _at("frozen", "the first frozen layer is"),
    _m("constant_init_layers", "Hidden weight layers (not the output layer) whose initial weights are all equal.",
       unit="layers"),
    _at("constant_init", "the first constant-initialised hidden layer is"),
    _m("constant_init_value", "The value every weight of that layer starts at."),
    _m("init_scale_max", "Largest initial weight std over its He or Xavier reference, over hidden layers not "
                         "followed by normalisation.", unit="x"),
    _at("init_scale_max", "the hidden layer with the largest initial scale is"),
    _m("init_scale_max_reference", "The reference of that layer: He (before ReLU-like units) or Xavier.", kind="text"),
    _m("init_scale_max_std", "Initial weight standard deviation of that layer."),
    _m("init_scale_min", "Smallest initial weight std over its He or Xavier reference, over hidden layers not "
                         "followed by normalisation.", unit="x"),
    _at("init_scale_min", "the hidden layer with the smallest initial scale is"),
    _m("init_scale_min_reference", "The reference of that layer: He or Xavier.", kind="text"),
    _m("init_scale_min_std", "Initial weight standard deviation of that layer."),
    # traced graph
    _m("graph", "How the graph was obtained: fx, hooked (one recorded forward pass) or unavailable.", kind="text"),
    _m("batch_size", "Training batch size: the first batch's, or the target's batch_size when there is no data.",
       unit="samples"),
    _m("nonlinearities", "Activation ops on the forward path (softmax and log_softmax not counted).", unit="ops"),
    _m("stacked_linear_pairs", "Linear or convolution layers feeding another with no activation between.",
       unit="pairs"),
    _at("stacked_linear", "the second layer of the first such pair is"),
    _m("stacked_linear_first", "The first layer of that pair.", kind="text"),
    _m("saturating_run", "Longest run of layers followed by sigmoid or tanh, with no normalisation or skip "
                         "connection between.", unit="layers"),
    _at("saturating_run", "that run starts"),
    _m("bias_before_batchnorm", "Layers whose bias feeds BatchNorm directly.", unit="layers"),
    _at("bias_before_batchnorm", "the first such layer is"),
    _m("batch_softmax", "softmax or log_softmax calls that normalise over the batch dimension.", unit="calls"),
    _at("batch_softmax", "the first such call is"),
    _m("singleton_softmax", "softmax or log_softmax calls, in the model or the loss function, over a dimension of "
                            "size 1: their output is a constant.", unit="calls"),
    _at("singleton_softmax", "the first such call is"),
    _m("singleton_softmax_shape", "Shape of the tensor that call normalises.", kind="text"),
    _m("singleton_softmax_log", "That call is log_softmax (constant 0) rather than softmax (constant 1).",
       kind="bool"),
    _m("target_is_one_hot", "The example batch's targets are one-hot rows of the output's shape.", kind="bool"),
    _m("target_multi_hot_rows", "Fraction of the example batch's 0/1 target rows with more than one 1 (multi-hot).",
       unit="fraction"),
    _m("target_row_sum_max", "Largest row sum of the example batch's (N, C) targets.", unit="x"),
    _m("target_is_binary", "Every target value of the example batch is 0 or 1.", kind="bool"),
    _m("detached_output", "Every path from the loss back to a trainable layer passes .detach() or .data.",
       kind="bool"),
    _at("detached_output", "the detach is"),
    # what reaches the loss
    _m("output_op", "The last value-changing op before the loss: softmax, log_softmax, sigmoid, tanh, relu, "
                    "activation, layer, or other.", kind="text"),
    _m("output_op_name", "That op as written: nn.Softmax, F.softmax, .sigmoid(), ...", kind="text"),
    _at("output_op", "that op is"),
    _m("loss_kind", "The loss function called on the output: cross_entropy, nll_loss, binary_cross_entropy, "
                    "binary_cross_entropy_with_logits, mse_loss, ... or unknown.", kind="text"),
    _m("loss_name", "The loss as the target names it (CrossEntropyLoss, F.mse_loss, ...).", kind="text"),
    _m("loss_input_shape", "Shape of what the loss receives as its input.", kind="text"),
    _m("loss_target_shape", "Shape of what the loss receives as its target.", kind="text"),
    _m("loss_broadcast", "An elementwise loss broadcasts input and target to more elements than either has.",
       kind="bool"),
    _m("loss_broadcast_shape", "The shape they broadcast to.", kind="text"),
    _m("loss_shape_mismatch", "An elementwise loss compares input and target of different sizes.", kind="bool"),
    _m("loss_classes", "Classes a cross-entropy or NLL loss sees (size of its input's dim 1).", unit="classes"),
    _m("softmax_loss_floor", "Lowest cross-entropy reachable when the logits are probabilities: ln(1 + (C-1)/e)."),
    _m("output_min", "Smallest value the loss receives on the example batch."),
    _m("output_max", "Largest value the loss receives on the example batch."),
    _m("target_is_class_index", "The targets are integer class indices for the output's last dimension.",
       kind="bool"),
    _m("target_outside_output_range", "Fraction of targets outside the value range of the output activation.",
       unit="fraction"),
    # optimizer
    _m("optimizer", "The optimizer's class.", kind="text"),
    _m("optimizer_family", "adam, sgd, rmsprop, adagrad, adadelta or other.", kind="text"),
    _m("user_optimizer", "The target defines its own optimizer (not doctor's default).", kind="bool"),
    _m("lr", "Learning rate of the optimizer's first parameter group."),
    _m("lr_usual_low", "Low end of the learning rates commonly used with this optimizer family."),
    _m("lr_usual_high", "High end of the learning rates commonly used with this optimizer family."),
    _m("adam_eps", "eps of an Adam-family optimizer."),
    _at("optimizer", "the target builds its optimizer"),
    _m("params_not_in_optimizer", "Trainable parameters that no parameter group of the optimizer holds.",
       unit="params"),
    _m("tensors_not_in_optimizer", "Trainable parameter tensors that no parameter group holds.", unit="tensors"),
    _at("params_not_in_optimizer", "the first such parameter is"),
    # source
    _m("source_available", "The target's source could be read and parsed.", kind="bool"),
    _m("always_on_dropout", "Functional dropout calls in a forward with no training=self.training.", unit="calls"),
    _at("always_on_dropout", "the first such call is"),
    _m("train_step_without_zero_grad", "The target's train_step never zeroes gradients.", kind="bool"),
    _at("train_step", "train_step is defined"),
    _m("clip_after_step", "Gradient clipping is called after the optimizer step.", kind="bool"),
    _at("clip_after_step", "that clipping call is"),
    _m("scheduler_lr_factor", "Smallest learning-rate factor a scheduler in the source reaches after "
                              "static.scheduler_steps steps (1 when none is found).", unit="x"),
    _m("scheduler", "That scheduler's constructor call, as written.", kind="text"),
    _m("scheduler_steps", "Scheduler steps simulated.", unit="steps"),
    _at("scheduler", "that scheduler is built"),
    # per layer
    _m("stacked_linear", "This Linear/Conv layer reads another's output with no activation between.",
       scope="layer", kind="bool"),
    _m("linear_predecessor", "The layer it reads from.", scope="layer", kind="text"),
    _m("bias_before_norm", "This layer has a bias and feeds BatchNorm directly.", scope="layer", kind="bool"),
    _m("init_std", "Standard deviation of this layer's initial weights.", scope="layer"),
    _m("init_scale", "Initial weight std over the He (before ReLU-like units) or Xavier std.", scope="layer",
       unit="x"),
    _m("init_reference", "Which reference init_scale uses: He or Xavier.", scope="layer", kind="text"),
    _m("init_constant", "All initial weights of this layer are equal.", scope="layer", kind="bool"),
    _m("is_output_layer", "This is the weight layer nearest the output.", scope="layer", kind="bool"),
    _m("followed_by_norm", "A normalisation layer reads this layer's output directly.", scope="layer", kind="bool"),
]
