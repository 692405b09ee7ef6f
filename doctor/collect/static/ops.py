"""The model as a sequence of operations (from torch.fx or a hooked forward), and what each op does.

Both tracers produce the same `Graph`: ops in execution order, each with the ops whose outputs it
reads, so checks can walk from the output back to the last layer, or from a layer to the next.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from torch import nn
from doctor.collect.context import OUTPUT_KEYS  # the dict entries read as the model's output

# Ops that move or copy values without changing what they mean: walked through when asking
# "what produced the output" or "what follows this layer".
TRANSPARENT = frozenset({
    "view", "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose", "t", "contiguous", "clone",
    "to", "float", "double", "half", "bfloat16", "type", "type_as", "getitem", "narrow", "select", "expand",
    "Flatten", "Unflatten", "Identity", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
})
SCALING = frozenset({"mul", "truediv", "div"})  # by a plain number: a temperature, a scale

ACTIVATION_KIND = {
    "softmax": "softmax", "Softmax": "softmax", "Softmax2d": "softmax",
    "log_softmax": "log_softmax", "LogSoftmax": "log_softmax",
    "sigmoid": "sigmoid", "Sigmoid": "sigmoid", "hardsigmoid": "sigmoid", "Hardsigmoid": "sigmoid",
    "tanh": "tanh", "Tanh": "tanh", "hardtanh": "tanh", "Hardtanh": "tanh",
    "relu": "relu", "relu_": "relu", "ReLU": "relu", "relu6": "relu", "ReLU6": "relu",
    "gelu": "other", "GELU": "other", "silu": "other", "SiLU": "other", "elu": "other", "ELU": "other",
    "leaky_relu": "other", "LeakyReLU": "other", "mish": "other", "Mish": "other", "softplus": "other",
    "Softplus": "other", "selu": "other", "SELU": "other", "celu": "other", "CELU": "other", "prelu": "other",
    "PReLU": "other", "hardswish": "other", "Hardswish": "other", "glu": "other", "GLU": "other",
    "rrelu": "other", "RReLU": "other", "softsign": "other", "Softsign": "other", "tanhshrink": "other",
    "Tanhshrink": "other", "logsigmoid": "other", "LogSigmoid": "other", "Softmin": "softmax", "softmin": "softmax",
}
SATURATING = frozenset({"Sigmoid", "Tanh", "sigmoid", "tanh"})
# Value range of an output activation, for comparing with regression targets.
RANGE = {"relu": (0.0, math.inf), "sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "tanh": (-1.0, 1.0)}
MERGES = frozenset({"add", "iadd", "cat", "concat", "stack", "sub", "mul", "matmul", "bmm", "einsum", "where"})
DETACH = frozenset({"detach", "detach_"})
LINEAR_TYPES = (nn.Linear, nn.modules.conv._ConvNd, nn.Bilinear)
# BatchNorm1d/2d/3d, SyncBatchNorm and the Lazy ones; not InstanceNorm (per sample, no batch statistics)
BATCHNORM_TYPES = (nn.modules.batchnorm._BatchNorm,)
NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
_NORM_FUNCS = frozenset({"batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm", "normalize"})


def _int(v: Any) -> Optional[int]:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def call_dim(name: str, args: tuple, kwargs: dict) -> Optional[int]:
    """The `dim` of a softmax-like call (None for other calls): the keyword, else the second positional
    argument, since the tensor comes first for `F.softmax(x, 1)` and `x.softmax(1)` alike in both traces."""
    if "softmax" not in name and "softmin" not in name:
        return None
    return _int(kwargs["dim"] if "dim" in kwargs else args[1] if len(args) > 1 else None)


def module_dim(mod: Any) -> Optional[int]:
    """An nn.Softmax-like module's `dim` attribute (None when it has none or it is not set)."""
    return _int(getattr(mod, "dim", None))


def has_scalar_operand(args: tuple) -> bool:
    """A plain number among the call's arguments (`x * 0.5`, `x + 1`)."""
    return any(_int(a) is not None or isinstance(a, float) for a in args)


def pick_output(value: Any, is_leaf: Any) -> Any:
    """The part of a model's return value doctor treats as its output: a dict's logits/out/output entry (else
    its first), a tuple's or list's first; `is_leaf` says what counts as a value (a tensor, an fx node)."""
    if is_leaf(value):
        return value
    if isinstance(value, dict):
        keys = {str(k).lower(): k for k in value}
        for k in OUTPUT_KEYS:
            if k in keys and is_leaf(value[keys[k]]):
                return value[keys[k]]
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return next((v for v in value if is_leaf(v)), None)
    return None


def normalise_name(name: str) -> str:
    """'__truediv__' -> 'truediv', '__radd__' -> 'add', 'softmax' stays."""
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name.startswith(("r", "i")) and name[1:] in ("add", "sub", "mul", "truediv", "div", "matmul"):
            name = name[1:]
    return name


@dataclass
class Op:
    index: int
    kind: str  # input | module | function | method | attr
    name: str  # module class name ('Linear') or normalised call name ('softmax')
    label: str  # as the user wrote it: a module path, 'F.softmax', 'torch.sigmoid', '.detach()'
    path: str = ""  # module path for modules; for calls, the module whose forward made them ('' is the root)
    inputs: tuple[int, ...] = ()  # ops whose outputs this op reads
    module: Optional[nn.Module] = field(default=None, repr=False)
    dim: Optional[int] = None  # softmax-like ops: the dim argument (None when implicit)
    scalar_operand: bool = False  # an arithmetic op with a plain number as one operand
    shape: Optional[tuple[int, ...]] = None  # output shape when known
    site: Optional[str] = None  # 'file:line' in the target file (calls; modules use their construction site)
    users: list[int] = field(default_factory=list)
    raised: bool = False  # a loss call that raised (recorded so its inputs can explain why)
    call_args: Any = field(default=None, repr=False)  # (args, kwargs) of recorded calls, for loss calls

    @property
    def activation(self) -> Optional[str]:
        """softmax, log_softmax, sigmoid, tanh, relu, other, or None for a non-activation."""
        return ACTIVATION_KIND.get(self.name)

    @property
    def is_linear_layer(self) -> bool:
        return self.kind == "module" and isinstance(self.module, LINEAR_TYPES)

    @property
    def is_depthwise(self) -> bool:
        m = self.module
        return isinstance(m, nn.modules.conv._ConvNd) and m.groups > 1

    @property
    def is_norm(self) -> bool:
        return (self.kind == "module" and isinstance(self.module, NORM_TYPES)) or (
            self.kind != "module" and self.name in _NORM_FUNCS)

    @property
    def transparent(self) -> bool:
        return self.name in TRANSPARENT or (self.name in SCALING and self.scalar_operand)

    @property
    def is_merge(self) -> bool:
        return self.name in MERGES and not self.scalar_operand and len(self.inputs) >= 2

    def describe(self, root: str = "") -> str:
        """How a finding names it: the module path, or the call and the forward that makes it
        ("F.softmax in Net.forward" for the model's own forward, "... in head.forward" for a sub-module)."""
        if self.kind == "module":
            return self.path
        return f"{self.label} in {self.path or root or 'the model'}.forward"


@dataclass
class Graph:
    method: str  # "fx" or "hooked"
    ops: list[Op] = field(default_factory=list)
    output: Optional[int] = None  # the op that produced the model's output (first tensor of a tuple/dict)
    output_value: Any = field(default=None, repr=False)  # the output tensor on the example batch, when run

    def link(self) -> None:
        for op in self.ops:
            op.users.clear()
        for op in self.ops:
            for i in op.inputs:
                self.ops[i].users.append(op.index)

    def modules(self) -> Iterator[Op]:
        return (op for op in self.ops if op.kind == "module")

    def primary(self, op: Op) -> Optional[Op]:
        """The one computed input of a transparent op (None when there is not exactly one)."""
        computed = [i for i in op.inputs if self.ops[i].kind not in ("attr",)]
        return self.ops[computed[0]] if len(computed) == 1 else None

    def producer(self, op: Optional[Op]) -> Optional[Op]:
        """The first op at or before `op`, walking back through transparent ops, that changes values."""
        seen = 0
        while op is not None and op.transparent and seen < 10_000:
            op = self.primary(op)
            seen += 1
        return op

    def next_layer(self, op: Op) -> Optional[Op]:
        """The op that reads `op`'s output through transparent single-use ops only; None at a branch."""
        cur = op
        while len(cur.users) == 1:
            nxt = self.ops[cur.users[0]]
            if not nxt.transparent:
                return nxt
            cur = nxt
        return None
