"""Eval-mode health for deployment: the same batch gives the same output twice, and eval calls change no state."""

from __future__ import annotations

import torch

from doctor.collect.context import model_output
from doctor.collect.deploy import BUDGETS, deploy_model, eval_mode, info
from doctor.collect.probes import Probe


def run(ctx) -> None:
    model, weights = deploy_model(ctx)
    shown = info(ctx)
    shown.weights = shown.weights or weights
    x = (ctx.val_batches or ctx.train_batches)[0][0]
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    try:
        with eval_mode(model), torch.no_grad():
            # Two seeds, then the first one again: a difference that the seed repeats is random numbers drawn in
            # eval mode (dropout left on, noise); one it does not repeat is state kept between calls.
            outs = []
            for seed in (ctx.seed, ctx.seed + 1, ctx.seed):
                torch.manual_seed(seed)
                outs.append(model_output(model, x).detach().float())
        a, b, c = outs
        after = model.state_dict()
        changed = [k for k in before if not torch.equal(before[k], after[k])] if len(before) < 2000 else []
        vals = torch.stack([(a - b).abs().max(), (a - c).abs().max(), a.abs().max()]).tolist()  # one read
    finally:
        model.load_state_dict(before)  # a BatchNorm that updated its statistics in eval mode, put back
        torch.set_rng_state(rng)
    diff, same_seed, scale = vals
    sc = ctx.metrics.scalars
    sc["deploy.eval_max_diff"] = diff
    sc["deploy.eval_rel_diff"] = diff / scale if scale > 0 else diff
    sc["deploy.eval_same_seed_rel_diff"] = same_seed / scale if scale > 0 else same_seed
    sc["deploy.eval_state_changed"] = bool(changed)
    sc["deploy.eval_changed_at"] = changed[0] if changed else None
    shown.eval_max_diff = diff


PROBE = Probe(
    name="deploy_eval",
    doc="Runs one validation batch three times in eval mode (seeds s, s+1, s) and compares the outputs; records "
        "parameters and buffers an eval call changed. Dropout and BatchNorm in their eval behaviour are judged by "
        "train-eval-discrepancy and functional-dropout-always-on.",
    run=run, cost="3 forward passes", order=82, budgets=BUDGETS, opt_in="deploy")
