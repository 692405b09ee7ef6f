"""Keep `--static` light: building an optimizer must not import torch._dynamo (seconds of start-up).

Optimizer methods such as add_param_group are wrapped by torch._compile._disable_dynamo, which
imports torch._dynamo on first call only to mark them "do not compile". A static run never
compiles or steps, so the worker marks them as already handled. Used only under --static.
"""

from __future__ import annotations

import torch


def skip_dynamo_for_optimizers() -> None:
    for name in dir(torch.optim.Optimizer):
        fn = getattr(torch.optim.Optimizer, name, None)
        wrapped = getattr(fn, "__wrapped__", None)
        code = getattr(fn, "__code__", None)
        if wrapped is not None and code is not None and code.co_name == "inner" \
                and code.co_filename.endswith("_compile.py") and getattr(wrapped, "__dynamo_disable", None) is None:
            setattr(wrapped, "__dynamo_disable", wrapped)  # what `inner` calls instead of importing dynamo
