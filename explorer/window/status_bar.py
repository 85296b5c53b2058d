"""The status bar's pieces and the words of the About box:
the short form of a long message, the device the runs train on, the app's version."""

from __future__ import annotations

import re


def device_description() -> str:
    import torch

    from engine.training import TRAIN_THREADS, resolve_device
    device = resolve_device("auto")
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    threads = TRAIN_THREADS   # the GUI thread itself keeps one (explorer/window/runtime.py)
    return f"CPU ({threads} training thread{'s' if threads != 1 else ''})"


def app_version() -> str:
    try:
        from importlib.metadata import version
        return version("latent-explorer")
    except Exception:  # noqa: BLE001 — not installed (run from a clone): the package's own number
        from engine import __version__
        return __version__


def short_form(message: str, limit: int = 90) -> str:
    """The first clause of a message, for the status bar (the whole message is in a dialog)."""
    first = re.split(r"(?<=[.;:])\s", message.strip(), maxsplit=1)[0].rstrip(":;")
    return first if len(first) <= limit else first[:limit - 1].rsplit(" ", 1)[0] + "…"
