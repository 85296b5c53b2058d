"""The runs table marks an NLL measured before the run's latest checkpoint as old, and says where."""

import types

from explorer.runs_panel import nll_text, nll_tooltip


def state(metrics_step, run_step):
    metrics = {"nll": 97.5, "nll_samples": 1000, "images": {"n": 10000}, "step": metrics_step}
    return types.SimpleNamespace(run=types.SimpleNamespace(step=run_step, checkpoint="checkpoint-000002"),
                                 metrics=metrics, headline_nll=97.5, metrics_note="")


def test_metrics_of_the_latest_checkpoint_show_plainly_with_their_step():
    current = state(156, 156)
    assert nll_text(current) == "97.50"
    assert "measured at step 156." in nll_tooltip(current) and "Old" not in nll_tooltip(current)


def test_metrics_of_an_earlier_step_are_marked_old():
    stale = state(39, 156)
    assert nll_text(stale) == "97.50 (old)"
    assert "Old: measured at step 39; the run is at step 156; Evaluate measures it again." in nll_tooltip(stale)
