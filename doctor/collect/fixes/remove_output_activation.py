"""Replace the model's last Softmax, LogSoftmax or Sigmoid module by Identity, so the loss sees raw scores."""

from __future__ import annotations

from torch import nn

from doctor.collect.fixes import NotApplicable, swap, with_model

OUTPUT_ACTIVATIONS = (nn.Softmax, nn.LogSoftmax, nn.Sigmoid, nn.Softmin)


def apply(ctx):
    found: list[str] = []

    def change(model: nn.Module) -> int:
        last = None
        for name, mod in model.named_modules():
            if isinstance(mod, OUTPUT_ACTIVATIONS):
                last = name
        if last is None:
            raise NotApplicable("the output activation is a function call in forward, not a module doctor can swap")
        found.append(f"{last} ({type(model.get_submodule(last)).__name__})")
        swap(model, last, nn.Identity())
        return 1

    fixed, _ = with_model(ctx, change)
    return fixed, f"{found[0]} replaced by Identity: the loss gets raw scores"
