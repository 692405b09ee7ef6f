"""Import the user's target file and resolve its names into a TrainingSetup (DESIGN §1)."""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Optional

import torch
from torch import nn

from doctor.collect.inject import InjectionError, call_injected
from doctor.collect.static.sites import Sites, record_sites

MODEL_NAMES = ("build_model", "get_model", "model")
TRAIN_NAMES = ("train_data", "train_loader", "train_dataset")
VAL_NAMES = ("val_data", "val_loader", "val_dataset")
LOSS_NAMES = ("loss_fn", "criterion")
OPTIMIZER_NAMES = ("optimizer", "build_optimizer")
TASKS = ("classification", "binary", "multilabel", "regression")


class TargetError(Exception):
    """The target cannot be loaded or resolved; `kind` is an ErrorRecord kind."""

    def __init__(self, message: str, *, kind: str = "load", hint: str = "", cause: Optional[BaseException] = None):
        super().__init__(message)
        self.kind = kind
        self.hint = hint
        self.cause = cause


@dataclass
class TrainingSetup:
    """What the target file resolved to. Data fields hold raw user objects until data.py wraps them."""

    path: str
    model: nn.Module
    train_data: Any = None
    val_data: Any = None
    loss_fn: Optional[Callable[..., torch.Tensor]] = None
    make_optimizer: Optional[Callable[[nn.Module], torch.optim.Optimizer]] = None
    batch_size: int = 32
    task: Optional[str] = None
    train_step: Optional[Callable[..., Any]] = None
    example_input: Any = None
    names: dict[str, str] = field(default_factory=dict)  # what -> the name it was found under
    defaults_used: list[str] = field(default_factory=list)
    sites: Optional[Sites] = None  # where in the target file each module was constructed (static analysis)


def import_target(path: str) -> ModuleType:
    """Import a file by path without running its `__main__` block."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise TargetError(f"{path}: no such file", hint="Pass the path of a Python file that defines your model.")
    name = "doctor_target_" + "".join(c if c.isalnum() else "_" for c in os.path.splitext(os.path.basename(path))[0])
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"{path}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    # Sibling imports (`from mydata import ...`) should work as they do for `python model.py`.
    sys.path.insert(0, os.path.dirname(path))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - user code may raise anything, SystemExit included
        raise TargetError("importing the target failed", kind="load", cause=exc,
                          hint="Fix the error above; doctor imports the file as a module, so training "
                               "code belongs under `if __name__ == \"__main__\":`.") from exc
    return module


def _find(module: ModuleType, names: tuple[str, ...]) -> tuple[Optional[str], Any]:
    for n in names:
        if hasattr(module, n):
            return n, getattr(module, n)
    return None, None


def _module_classes(module: ModuleType) -> list[type]:
    return [
        obj for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__
    ]


def _resolve_model(module: ModuleType, factory: Optional[str], inject: dict[str, Any]) -> tuple[str, nn.Module]:
    if factory:
        if not hasattr(module, factory):
            raise TargetError(f"the target has no name '{factory}'", kind="no_model",
                              hint=f"Define {factory} in the file, or drop ':{factory}' to let doctor look for a model.")
        name, obj = factory, getattr(module, factory)
    else:
        name, obj = _find(module, MODEL_NAMES)
    if name is None:
        buildable = []
        for cls in _module_classes(module):
            try:
                sig = inspect.signature(cls)
            except (TypeError, ValueError):
                continue
            if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                   for p in sig.parameters.values()):
                buildable.append(cls)
        if len(buildable) == 1:
            name, obj = buildable[0].__name__, buildable[0]
        elif len(buildable) > 1:
            listed = ", ".join(c.__name__ for c in buildable)
            raise TargetError(
                f"the target defines several nn.Module classes ({listed}) and no model name",
                kind="no_model",
                hint="Add `def build_model(): return YourModel(...)`, or run `doctor check file.py:ClassName`.",
            )
        else:
            raise TargetError(
                "no model found: looked for " + ", ".join(MODEL_NAMES)
                + ", then for the one nn.Module subclass in the file that builds with no arguments",
                kind="no_model",
                hint="Add `def build_model(): return YourModel(...)` to the file, or name a factory: "
                     "`doctor check file.py:make_net`.",
            )
    value = obj
    if not isinstance(value, nn.Module) and callable(value):
        try:
            value = call_injected(value, inject, what=name)
        except InjectionError as exc:
            raise TargetError(str(exc), kind="load") from exc
        except Exception as exc:  # noqa: BLE001
            raise TargetError(f"building the model with {name}() failed", kind="load", cause=exc,
                              hint="The model factory raised; doctor calls it once with no training.") from exc
    if not isinstance(value, nn.Module):
        raise TargetError(f"'{name}' gave a {type(value).__name__}, not an nn.Module", kind="no_model",
                          hint="The model name must be an nn.Module or a callable returning one.")
    return name, value


def _optimizer_factory(opt: Callable[..., Any], name: str, inject: dict[str, Any]):
    def make(model: nn.Module) -> torch.optim.Optimizer:
        try:
            return call_injected(opt, {**inject, "model": model}, what=name)
        except InjectionError as exc:
            raise TargetError(str(exc), kind="load") from exc
    return make


def load_target(path: str, factory: Optional[str] = None, *, device: str = "cpu", seed: int = 0) -> TrainingSetup:
    """Import `path` and resolve model, data, loss, optimizer, batch size, task, train_step, example input."""
    sites = Sites(path)
    with record_sites(sites):  # module construction sites, for findings that point at a line
        module = import_target(path)
    inject: dict[str, Any] = {"device": torch.device(device), "seed": seed}

    bs_obj = getattr(module, "batch_size", 32)
    if not isinstance(bs_obj, int) or isinstance(bs_obj, bool) or bs_obj < 1:
        raise TargetError(f"batch_size must be a positive int, got {bs_obj!r}", kind="load")
    inject["batch_size"] = bs_obj

    torch.manual_seed(seed)
    with record_sites(sites):
        model_name, model = _resolve_model(module, factory, inject)
    inject["model"] = model

    setup = TrainingSetup(path=os.path.abspath(path), model=model, batch_size=bs_obj, sites=sites)
    setup.names["model"] = model_name

    task = getattr(module, "task", None)
    if task is not None and task not in TASKS:
        raise TargetError(f"task must be one of {', '.join(TASKS)}; got {task!r}", kind="load")
    setup.task = task

    for attr, names in (("train_data", TRAIN_NAMES), ("val_data", VAL_NAMES)):
        name, obj = _find(module, names)
        if name is not None:
            setup.names[attr] = name
            setattr(setup, attr, obj)  # callables are resolved by data.py with injection

    name, loss = _find(module, LOSS_NAMES)
    if name is not None:
        if not callable(loss):
            raise TargetError(f"'{name}' must be callable (output, target) -> loss", kind="load")
        setup.names["loss"] = name
        setup.loss_fn = loss

    name, opt = _find(module, OPTIMIZER_NAMES)
    if name is not None:
        if isinstance(opt, torch.optim.Optimizer):
            raise TargetError(
                f"'{name}' is an optimizer instance; doctor needs a callable (model) -> Optimizer",
                kind="load", hint=f"Write `def {name}(model): return torch.optim.SGD(model.parameters(), lr=...)`.")
        if not callable(opt):
            raise TargetError(f"'{name}' must be a callable (model) -> torch.optim.Optimizer", kind="load")
        setup.names["optimizer"] = name
        setup.make_optimizer = _optimizer_factory(opt, name, inject)

    step = getattr(module, "train_step", None)
    if step is not None:
        if not callable(step):
            raise TargetError("'train_step' must be callable (model, batch, optimizer, loss_fn) -> loss", kind="load")
        setup.train_step = step
        setup.names["train_step"] = "train_step"

    setup.example_input = getattr(module, "example_input", None)
    return setup
