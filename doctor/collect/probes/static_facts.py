"""Static facts: the module tree, the traced graph, the loss and optimizer as built, and the target's source.

No training step: one forward pass on one example batch at most (doctor/collect/static/).
Runs on a PartialContext too, when the target loaded but could not be prepared.
"""

from __future__ import annotations

from doctor.collect.probes import Probe


def run(ctx) -> None:
    from doctor.collect.static.analysis import Analysis, inputs_from  # noqa: PLC0415
    from doctor.collect.static.checks import run_checks  # noqa: PLC0415

    analysis = Analysis(inputs_from(ctx))
    facts = run_checks(analysis)
    m = ctx.metrics
    m.scalars.update(facts.scalars)
    for path, values in facts.layers.items():
        m.layers.setdefault(path, {}).update(values)
    m.layer_sites.update(facts.sites)
    if not m.layer_types:  # a PartialContext: prepare() did not get to fill them
        m.layer_types = {n: type(mod).__name__ for n, mod in ctx.setup.model.named_modules() if n}
    m.setup.notes.extend(analysis.notes)


PROBE = Probe(name="static", doc="Structure faults from the module tree, the traced graph, the loss and optimizer as "
                                 "built, and the target's source.",
              run=run, needs_model=False, static=True, cost="no steps; one forward pass on one batch", order=0)
