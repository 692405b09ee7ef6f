"""Clip the total gradient norm at the median norm the burst measured, in every training step."""

from __future__ import annotations

import dataclasses

import torch

from doctor.collect.fixes import NotApplicable


def apply(ctx):
    sc = ctx.metrics.scalars
    limit = sc.get("grad.total_norm_median")
    if not isinstance(limit, (int, float)) or not limit > 0 or limit != limit:
        raise NotApplicable("the burst measured no finite gradient norm to clip at")
    if ctx.setup.train_step is not None:
        raise NotApplicable("the target's own train_step runs the step; clip inside it")
    base = ctx.step_fn

    def step_fn(after_backward=None):
        def step(model, batch, opt):
            def clip():
                # The probes' measurement first: the raw gradient is what exploding-gradients judges, and
                # clipping does not make it smaller, only the step; the verdict then rests on the loss.
                if after_backward is not None:
                    after_backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), limit)
            return base(clip)(model, batch, opt)
        return step

    fixed = dataclasses.replace(ctx, cache={})
    fixed.step_fn = step_fn  # an instance attribute, in front of the method
    return fixed, f"gradients clipped at a total norm of {limit:.3g} (the burst's median) in every step"
