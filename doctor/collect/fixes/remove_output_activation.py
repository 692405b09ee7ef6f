"""Replace the model's last Softmax, LogSoftmax or Sigmoid module by Identity, so the loss sees raw scores."""

from __future__ import annotations

from torch import nn

from doctor.collect.fixes import NotApplicable, _source, last_output_activation, strip_output_activation, with_model


def apply(ctx):
    found: list[str] = []

    def change(model: nn.Module) -> int:
        name = strip_output_activation(model)
        if name is None:
            raise NotApplicable("the output activation is a function call in forward, not a module doctor can swap")
        found.append(name)
        return 1

    fixed, _ = with_model(ctx, change)
    return fixed, f"{found[0]} replaced by Identity: the loss gets raw scores"


def edit(ctx) -> list:
    return activation_edits(ctx)


def activation_edits(ctx) -> list:
    """The output activation's constructor call in the user's file, replaced by nn.Identity()."""
    model = ctx.setup.model
    name = last_output_activation(model)
    if name is None:
        return []
    path = ctx.setup.path
    _text, tree = _source.parsed(path)
    kind = type(model.get_submodule(name)).__name__
    found = _source.at_line(_source.calls(tree, {kind}), _source.site_line(ctx.metrics.layer_sites.get(name)))
    if len(found) != 1:
        return []
    call = found[0]
    prefix = _source.segment(path, call.func)[: -len(kind)] or "torch.nn."
    return [_source.replace(path, call, f"{prefix}Identity()")]
