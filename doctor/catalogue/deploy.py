"""Deployment readiness (--deploy): export, eval-mode health, int8/bf16 drift and inference cost."""

from __future__ import annotations

from doctor.catalogue import MetricDef, metric

EXPORT, ONNX, COST, EVAL, INT8, BF16 = "deploy_export", "deploy_onnx", "deploy_cost", "deploy_eval", "deploy_int8", \
    "deploy_bf16"

METRICS: list[MetricDef] = [
    metric("deploy.weights", EXPORT, "The weights the deploy probes judge: 'trained' (where the training burst ended) "
           "or 'initial'.", kind="text"),
    metric("deploy.export_failures", EXPORT, "Exporters that could not export the model in eval mode (torch.export, "
           "and torch.onnx.export when onnx is installed).", unit="exporters"),
    metric("deploy.export_ok", EXPORT, "torch.export exported the model in eval mode on a validation batch, its batch "
           "dimension dynamic.", kind="bool"),
    metric("deploy.export_with", EXPORT, "The exporter that failed.", kind="text"),
    metric("deploy.export_kind", EXPORT, "The construct that stopped the export, as a code: data_dependent, "
           "non_tensor_output, fixed_batch, numpy or unsupported.", kind="text"),
    metric("deploy.export_construct", EXPORT, "The construct that stopped the export: data-dependent control flow, an "
           "unsupported operation, a non-tensor output.", kind="text"),
    metric("deploy.export_error", EXPORT, "The exporter's error, in one line.", kind="text"),
    metric("deploy.export_code", EXPORT, "The line of the target file where the export (or the second batch size) "
           "failed.", kind="text"),
    metric("deploy.export_at", EXPORT, "The function of the target file and its line where the export failed.",
           kind="text"),
    metric("deploy.export_max_diff", EXPORT, "Largest |exported - eager| over the held-out batches and the second "
           "batch size."),
    metric("deploy.export_rel_diff", EXPORT, "That difference over the largest eager output.", unit="x"),
    metric("deploy.export_batches", EXPORT, "Held-out batches compared, exported against eager.", unit="batches"),
    metric("deploy.export_batch_size", EXPORT, "Batch size the model was exported at.", unit="samples"),
    metric("deploy.export_second_batch", EXPORT, "The second batch size the exported program was run at.",
           unit="samples"),
    metric("deploy.export_batch_ok", EXPORT, "At the second batch size the exported program ran and matched eager "
           "mode's output shape.", kind="bool"),
    metric("deploy.eager_second_batch_ok", EXPORT, "The eager model itself runs at the second batch size.",
           kind="bool"),
    metric("deploy.export_mismatch", EXPORT, "How the exported program and eager mode compare, in one sentence.",
           kind="text"),
    metric("deploy.export_mismatch_at", EXPORT, "Where in the target file the model rejects the second batch size.",
           kind="text"),
    metric("deploy.onnx_ok", ONNX, "torch.onnx.export exported the model.", kind="bool"),
    metric("deploy.onnx_bytes", ONNX, "Size of the ONNX model.", unit="bytes"),
    metric("deploy.params", COST, "Parameters of the model, trainable or not.", unit="params"),
    metric("deploy.size_mb", COST, "Size of the saved state_dict (torch.save).", unit="MB"),
    metric("deploy.latency_b1_ms", COST, "Median latency of one eval-mode forward call at batch size 1, on the "
           "device used.", unit="ms"),
    metric("deploy.latency_batch_ms", COST, "Median latency of one eval-mode forward call at the training batch "
           "size.", unit="ms"),
    metric("deploy.latency_batch_size", COST, "The training batch size that latency was measured at.",
           unit="samples"),
    metric("deploy.eval_max_diff", EVAL, "Largest difference between two eval-mode calls on the same batch.", unit=""),
    metric("deploy.eval_rel_diff", EVAL, "That difference over the largest output.", unit="x"),
    metric("deploy.eval_same_seed_rel_diff", EVAL, "Difference between two eval calls from the same random seed, over "
           "the largest output: not 0 when the forward keeps state between calls.", unit="x"),
    metric("deploy.eval_state_changed", EVAL, "Eval-mode calls changed a parameter or buffer of the model.",
           kind="bool"),
    metric("deploy.eval_changed_at", EVAL, "The first parameter or buffer an eval-mode call changed.", kind="text"),
    metric("deploy.metric", INT8, "The validation metric the drifts are measured on: 'accuracy' (classification) or "
           "'loss'.", kind="text"),
    metric("deploy.fp32_metric", INT8, "That metric in fp32, on the validation batches."),
    metric("deploy.int8_metric", INT8, "The same metric with dynamic int8 quantisation of Linear and LSTM layers."),
    metric("deploy.int8_drop", INT8, "Its loss against fp32: accuracy points lost, or the relative rise of the loss.",
           unit="x"),
    metric("deploy.int8_out_err", INT8, "RMS change of the outputs under int8 over their fp32 RMS.", unit="x"),
    metric("deploy.int8_layers", INT8, "Layers dynamic int8 quantisation replaced.", unit="layers"),
    metric("deploy.int8_worst_layer", INT8, "The layer whose own output changes most when int8 (on its fp32 input).",
           kind="text"),
    metric("deploy.int8_worst_layers", INT8, "The layers most responsible, each with its own relative output error.",
           kind="text"),
    metric("deploy.int8_layer_err_max", INT8, "The largest relative output error of one int8 layer on its fp32 input.",
           unit="x"),
    metric("deploy.bf16_metric", BF16, "The validation metric with the model and its inputs cast to bfloat16."),
    metric("deploy.bf16_drop", BF16, "Its loss against fp32: accuracy points lost, or the relative rise of the loss.",
           unit="x"),
    metric("deploy.bf16_out_err", BF16, "RMS change of the outputs under bf16 over their fp32 RMS.", unit="x"),
    metric("deploy.bf16_worst_layer", BF16, "The layer whose own output changes most in bf16 (on its fp32 input).",
           kind="text"),
    metric("deploy.bf16_worst_layers", BF16, "The layers most responsible, each with its own relative output error.",
           kind="text"),
    metric("deploy.bf16_layer_err_max", BF16, "The largest relative output error of one layer in bf16 on its fp32 "
           "input.", unit="x"),
]

SERIES: dict[str, str] = {
    "deploy.int8_err_by_layer": "Relative output error of each layer quantised to int8 alone, on its fp32 input.",
    "deploy.bf16_err_by_layer": "Relative output error of each layer cast to bfloat16 alone, on its fp32 input.",
}
