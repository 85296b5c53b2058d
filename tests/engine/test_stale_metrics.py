"""Fault 9: metrics measured before the run trained on are marked stale in `info`, `compare` and its table."""

from __future__ import annotations

import csv

from engine.cli import main
from engine.runs import Run
from engine.training import Trainer
from tests.engine.helpers import DIGITS, quick_train, small_model


def test_info_and_compare_mark_metrics_older_than_the_latest_checkpoint(tmp_path, capsys):
    trainer = Trainer(DIGITS, small_model("vae", latent_dim=2), quick_train(epochs=1), run_parent=tmp_path)
    trainer.run_to_end()
    path = trainer.run.path
    assert main(["evaluate", str(path), "--nll-samples", "2"]) == 0
    measured = Run.open(path).load_metrics()["step"]
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"measured at step {measured}, the latest checkpoint" in out and "STALE" not in out
    assert main(["resume", str(path), "--epochs", "2", "--quiet"]) == 0
    now = Run.open(path).step
    assert now > measured
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    assert f"STALE: measured at step {measured}; the run is at step {now}" in capsys.readouterr().out
    other = Trainer(DIGITS, small_model("ae", latent_dim=2), quick_train(epochs=1), run_parent=tmp_path)
    other.run_to_end()
    table = tmp_path / "table.csv"
    assert main(["compare", str(path), str(other.run.path), "--table", str(table)]) == 0
    out = capsys.readouterr().out
    assert f"its metrics.json is stale (measured at step {measured}; the run is at step {now})" in out
    rows = list(csv.DictReader(open(table)))
    assert rows[1]["metrics_stale"] == f"measured at step {measured}; the run is at step {now}"
    assert rows[2]["metrics_stale"] == ""
