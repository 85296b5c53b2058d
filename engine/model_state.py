"""A model's weights and its optimizers' state as safetensors tensors, checked against the model
they are loaded into: a file that does not fit is one ``RunError`` naming it and the first
mismatch (never a traceback from ``load_state_dict``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from engine.errors import RunError
from engine.storage import show_value


def load_checked(model: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Path, title: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        name = (missing or extra)[0]
        raise RunError(f"{path} does not fit a {title} with the run's settings ({'missing' if missing else 'unexpected'} {name}).")
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise RunError(f"{path} does not fit a {title} with the run's settings "
                           f"({k} is {tuple(tensors[k].shape)}, expected {tuple(v.shape)}).")
    model.load_state_dict(tensors)


def optimizers_to_tensors(optimizers: dict[str, torch.optim.Optimizer]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    tensors, meta = {}, {}
    for name, optimizer in optimizers.items():
        sd = optimizer.state_dict()
        for pid, state in sd["state"].items():
            for key, value in state.items():
                tensors[f"{name}/{pid}.{key}"] = torch.as_tensor(value).clone()
        meta[f"param_groups/{name}"] = json.dumps(sd["param_groups"])
    return tensors, meta


def tensors_to_optimizers(optimizers: dict[str, torch.optim.Optimizer], tensors: dict[str, torch.Tensor],
                          meta: dict[str, str], path: Path) -> None:
    """Load the state of each named optimizer.  A format-1 file (one optimizer, keys without a
    name) belongs to a model with a single optimizer, whatever it is called."""
    if "param_groups" in meta and len(optimizers) == 1:
        (only,) = optimizers
        meta = {f"param_groups/{only}": meta["param_groups"]}
        tensors = {f"{only}/{k}": v for k, v in tensors.items()}
    try:
        for name, optimizer in optimizers.items():
            groups = json.loads(meta[f"param_groups/{name}"])
            if not (isinstance(groups, list) and all(isinstance(g, dict) and isinstance(g.get("params"), list)
                                                     for g in groups)):
                raise ValueError(f"the {name!r} optimizer's parameter groups are malformed")
            state: dict[int, dict] = {}
            prefix = f"{name}/"
            for key, value in tensors.items():
                if key.startswith(prefix):
                    pid, field_name = key[len(prefix):].split(".", 1)
                    state.setdefault(int(pid), {})[field_name] = value
            expected = optimizer.state_dict()["param_groups"]
            if [len(g["params"]) for g in groups] != [len(g["params"]) for g in expected]:
                raise ValueError(f"the {name!r} optimizer's parameter groups differ")
            for group, ours in zip(groups, expected):
                for key, value in group.items():
                    mine = ours.get(key)
                    if key == "params" or value is None or mine is None:
                        continue
                    same = (isinstance(value, bool) == isinstance(mine, bool)
                            and (isinstance(value, (int, float)) == isinstance(mine, (int, float)))
                            and isinstance(value, list) == isinstance(mine, (list, tuple)))
                    if not same or (isinstance(value, float) and not math.isfinite(value)):
                        raise ValueError(f"the {name!r} optimizer's {key} is {show_value(value)}")
            params = [p for g in optimizer.param_groups for p in g["params"]]
            for pid, st in state.items():
                if not 0 <= pid < len(params):
                    raise ValueError(f"it holds state for parameter {pid} of a model with {len(params)}")
                for field_name, value in st.items():
                    if value.dim() > 0 and tuple(value.shape) != tuple(params[pid].shape):
                        raise ValueError(f"{name}/{pid}.{field_name} is {tuple(value.shape)}, "
                                         f"the parameter is {tuple(params[pid].shape)}")
            optimizer.load_state_dict({"state": state, "param_groups": groups})
    except KeyError as exc:
        raise RunError(f"{path} does not fit this model's optimizers (no state for {exc}).") from None
    except (ValueError, RuntimeError, IndexError, TypeError) as exc:
        raise RunError(f"{path} does not fit this model's optimizer ({str(exc)[:80]}).") from None
