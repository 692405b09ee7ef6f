"""The optimizer the target builds: its family and learning rate, Adam's eps, and parameters it leaves out."""

from __future__ import annotations

from typing import Optional

import torch

from doctor.collect.static.analysis import Analysis
from doctor.collect.static.facts import Facts

FAMILIES = {
    "Adam": "adam", "AdamW": "adam", "Adamax": "adam", "NAdam": "adam", "RAdam": "adam", "SparseAdam": "adam",
    "SGD": "sgd", "RMSprop": "rmsprop", "Adagrad": "adagrad", "Adadelta": "adadelta",
}
# Learning rates commonly used with each family; a rule decides how far outside counts as "far".
USUAL_LR = {"adam": (1e-5, 1e-2), "rmsprop": (1e-5, 1e-2), "sgd": (1e-4, 1.0), "adagrad": (1e-3, 1.0),
            "adadelta": (1e-2, 10.0)}


def _number(v: object) -> Optional[float]:
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return float(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def check(a: Analysis, f: Facts) -> None:
    opt = a.optimizer
    if opt is None or not opt.param_groups:
        return
    name = type(opt).__name__
    family = FAMILIES.get(name, "other")
    group = opt.param_groups[0]
    f.scalars["static.optimizer"] = name
    f.scalars["static.optimizer_family"] = family
    f.scalars["static.user_optimizer"] = a.inputs.user_optimizer
    lr = _number(group.get("lr"))
    if lr is not None:
        f.scalars["static.lr"] = lr
    if family in USUAL_LR:
        f.scalars["static.lr_usual_low"], f.scalars["static.lr_usual_high"] = USUAL_LR[family]
    eps = _number(group.get("eps"))
    if family == "adam" and eps is not None:
        f.scalars["static.adam_eps"] = eps
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    missing = [(n, p) for n, p in a.model.named_parameters() if p.requires_grad and id(p) not in in_opt]
    f.scalars["static.params_not_in_optimizer"] = sum(p.numel() for _, p in missing)
    f.scalars["static.tensors_not_in_optimizer"] = len(missing)
    if missing:
        owner = missing[0][0].rpartition(".")[0]
        f.scalars["static.params_not_in_optimizer_at"] = owner or missing[0][0]
