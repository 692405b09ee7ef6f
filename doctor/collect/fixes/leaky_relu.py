"""Replace every ReLU module by LeakyReLU(0.01), which keeps a gradient for negative inputs."""

from __future__ import annotations

from torch import nn

from doctor.collect.fixes import NotApplicable, swap, with_model


def apply(ctx):
    def change(model: nn.Module) -> int:
        names = [name for name, mod in model.named_modules() if type(mod) in (nn.ReLU, nn.ReLU6)]
        if not names:
            raise NotApplicable("the ReLUs are function calls in forward, not modules doctor can swap")
        for name in names:
            swap(model, name, nn.LeakyReLU(0.01))
        return len(names)

    fixed, n = with_model(ctx, change)
    return fixed, f"{n} ReLU module{'s' if n != 1 else ''} replaced by LeakyReLU(0.01)"
