"""Re-initialise every Linear and Conv layer: He (Kaiming) normal for ReLU-family networks, Xavier otherwise; biases zero."""

from __future__ import annotations

from torch import nn

from doctor.collect.fixes import NotApplicable, with_model

RELU_FAMILY = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SiLU, nn.GELU, nn.Mish)
LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def apply(ctx):
    scheme: list[str] = []

    def change(model: nn.Module) -> int:
        relu = any(isinstance(m, RELU_FAMILY) for m in model.modules())
        scheme.append("He (Kaiming) normal" if relu else "Xavier normal")
        n = 0
        for mod in model.modules():
            if isinstance(mod, LAYERS) and mod.weight is not None:
                if relu:
                    nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
                else:
                    nn.init.xavier_normal_(mod.weight)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
                n += 1
        if not n:
            raise NotApplicable("the model has no Linear or Conv layers to re-initialise")
        return n

    fixed, n = with_model(ctx, change)
    return fixed, f"{n} Linear/Conv layer{'s' if n != 1 else ''} re-initialised ({scheme[0]}, biases zero)"
