"""Which runs of ``medae train`` took the training steps of a model, and with which configuration.

A model folder is trained by one or more runs of the same command (training resumes from checkpoints),
and a finished run started again only recalibrates. The configuration may change between runs: more
steps to continue training, or a preprocessing setting changed before calibrating again. The card's
``training.config`` is the configuration the model is used with; ``training.runs`` names every run that
took steps and how its configuration differed from that one, so that the weights can be reproduced.
"""

from __future__ import annotations

from typing import Any


def record_steps(runs: list[dict], command: str, cfg: dict, start: int, step: int) -> list[dict]:
    """``runs`` with this run's steps (``start`` to ``step``) recorded; the run's entry is updated in place.

    Args:
        runs: The runs recorded so far (from the checkpoint).
        command: This run's command line.
        cfg: This run's configuration.
        start: The step this run started from.
        step: The step it has reached.
    """
    entry = {"command": command, "steps": [start, step], "config": cfg}
    if runs and runs[-1]["steps"][0] == start and runs[-1]["command"] == command:
        return [*runs[:-1], entry]
    return [*runs, entry]


def config_differences(trained: dict, now: dict, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Settings (dotted keys) whose value in ``trained`` differs from ``now``: ``{key: {trained, now}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(trained) | set(now)):
        a, b = trained.get(key), now.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.update(config_differences(a, b, f"{name}."))
        elif a != b:
            out[name] = {"trained": a, "now": b}
    return out


def runs_for_card(runs: list[dict], cfg: dict) -> list[dict]:
    """The runs as the card records them: command, steps and the settings that differed from ``cfg``."""
    return [
        {"command": r["command"], "steps": r["steps"], "config_differences": config_differences(r["config"], cfg)}
        for r in runs
    ]
