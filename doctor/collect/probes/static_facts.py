"""Static facts from the module tree: activations, normalisation layers, depth."""

from __future__ import annotations

from torch import nn

from doctor.collect.instrument import RELU_FAMILY, SATURATING
from doctor.collect.probes import Probe

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
                nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus)
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def run(ctx) -> None:
    mods = list(ctx.setup.model.modules())
    ctx.metrics.scalars.update({
        "static.activation_layers": sum(isinstance(m, _ACTIVATIONS) for m in mods),
        "static.relu_layers": sum(isinstance(m, RELU_FAMILY) for m in mods),
        "static.saturating_activations": sum(isinstance(m, SATURATING) for m in mods),
        "static.normalization_layers": sum(isinstance(m, _NORMS) for m in mods),
        "static.param_layers": sum(any(True for _ in m.parameters(recurse=False)) for m in mods),
        "static.depth": len(ctx.layer_order),
    })


PROBE = Probe(name="static", doc="Counts activation, normalisation and parametrised layers in the module tree.",
              run=run, needs_model=False, cost="no steps", order=0)
