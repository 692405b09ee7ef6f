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


def edit(ctx) -> list:
    """Each ReLU constructor in the user's file as LeakyReLU(0.01); [] unless every ReLU module was built there."""
    from doctor.collect.fixes import _source  # noqa: PLC0415

    path = ctx.setup.path
    _text, tree = _source.parsed(path)
    found = _source.calls(tree, {"ReLU", "ReLU6"})
    by_line: dict[tuple[int, str], int] = {}  # (construction line, class) -> modules built there
    for name, mod in ctx.setup.model.named_modules():
        if type(mod) not in (nn.ReLU, nn.ReLU6):
            continue
        line = _source.site_line(ctx.metrics.layer_sites.get(name))
        if line is None:
            return []  # built in a library or by a helper the diff cannot point at: no partial diff
        key = (line, type(mod).__name__)
        by_line[key] = by_line.get(key, 0) + 1
    chosen = {}
    for (line, kind), count in by_line.items():
        here = [c for c in _source.at_line(found, line) if _source.name_of(c.func) == kind]
        # One call there builds them all (a loop, a helper's default); as many calls as modules, one each.
        if len(here) != 1 and len(here) != count:
            return []
        chosen.update({(c.lineno, c.col_offset): c for c in here})
    edits = []
    for call in chosen.values():
        func = _source.segment(path, call.func)
        inplace = _source.keyword(call, "inplace")
        extra = f", inplace={_source.segment(path, inplace.value)}" if inplace is not None else ""
        edits.append(_source.replace(path, call, f"{func[: -len(_source.name_of(call.func))]}LeakyReLU(0.01{extra})"))
    return edits
