"""The probe set (engine/probe_sets.py): which images the map's codes come from — validation (as
before), test (the same images), train or all — in the config, the trainer, the saved probe and
movie, and ``export embeddings --set``."""

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.config import ConfigError, TrainConfig
from engine.datasets import load_dataset
from engine.history import ProbeCodes
from engine.models import build_model
from engine.movie import ProbeMovie
from engine.probe_sets import SPLIT_TRAIN, SPLIT_VALIDATION, encode_chunks, encode_points, probe_points
from engine.runs import Run
from engine.training import Trainer
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


def test_the_probe_set_is_a_setting_old_configs_read_as_validation():
    assert TrainConfig().probe_set == "validation"
    cfg = TrainConfig(probe_set="all")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    old = cfg.to_dict()
    del old["probe_set"]
    assert TrainConfig.from_dict(old).probe_set == "validation"
    with pytest.raises(ConfigError, match="probe set must be one of validation, test, train, all"):
        TrainConfig(probe_set="everything").validate()


def test_the_validation_choice_is_the_one_made_before_probe_sets(digits):
    points = probe_points(digits, "validation", 50, seed=3)
    old = torch.randperm(len(digits.val), generator=torch.Generator().manual_seed(3))[:50].sort().values
    assert np.array_equal(points.indices, old.numpy()) and (points.splits == SPLIT_VALIDATION).all()
    assert torch.equal(points.images, digits.val.images[old])
    test = probe_points(digits, "test", 50, seed=3)
    assert np.array_equal(test.indices, points.indices) and np.array_equal(test.splits, points.splits)


def test_all_is_both_splits_validation_first_and_a_size_caps_it_with_a_seeded_choice(digits):
    n_val, n_train = len(digits.val), len(digits.train)
    every = probe_points(digits, "all", None, seed=0)
    assert len(every) == n_val + n_train
    assert (every.splits[:n_val] == SPLIT_VALIDATION).all() and (every.splits[n_val:] == SPLIT_TRAIN).all()
    assert np.array_equal(every.indices[n_val:], np.arange(n_train))
    assert torch.equal(every.images[n_val + 5], digits.train.images[5])
    some = probe_points(digits, "all", 300, seed=1)
    assert len(some) == 300 and set(np.unique(some.splits)) == {SPLIT_VALIDATION, SPLIT_TRAIN}
    again = probe_points(digits, "all", 300, seed=1)
    assert np.array_equal(some.indices, again.indices) and np.array_equal(some.splits, again.splits)
    train = probe_points(digits, "train", None, seed=0)
    assert len(train) == n_train and (train.splits == SPLIT_TRAIN).all()


def test_encoding_goes_a_chunk_at_a_time_and_matches_one_pass(digits):
    model = build_model(small_model("vae"), digits.train.shape, 10).eval()
    points = probe_points(digits, "train", 250, seed=0)
    gen = encode_chunks(model, points, chunk=100)
    assert [next(gen), next(gen), next(gen)] == [(100, 250), (200, 250), (250, 250)]
    with pytest.raises(StopIteration) as done:
        next(gen)
    codes = done.value.value
    assert codes.shape == (250, 2)
    np.testing.assert_allclose(codes, encode_points(model, points, chunk=1000), atol=1e-6)


def test_the_trainer_probes_the_configured_set_and_the_run_keeps_each_points_split(digits, tmp_path):
    trainer = Trainer(DIGITS, small_model("ae"), quick_train(epochs=1, probe_set="all", probe_size=400),
                      dataset=digits, run_parent=tmp_path, run_name="r")
    last = trainer.run_to_end()
    probe = last.probe
    assert len(probe.codes) == 400 and set(np.unique(probe.splits)) == {SPLIT_VALIDATION, SPLIT_TRAIN}
    run = Run.open(tmp_path / "r")
    assert run.train.probe_set == "all"
    saved = run.load_probe()
    assert np.array_equal(saved.splits, probe.splits) and np.array_equal(saved.indices, probe.indices)
    movie = ProbeMovie.load(tmp_path / "r")
    assert np.array_equal(movie.frame(-1).splits, probe.splits)


def test_probes_and_movies_saved_before_probe_sets_are_validation_points(tmp_path):
    probe = ProbeCodes(np.zeros((3, 2), np.float32), np.array([0, 1, 2]), np.array([4, 5, 6]), 7)
    assert probe.splits.tolist() == [0, 0, 0]
    tensors = probe.to_tensors()
    del tensors["splits"]
    assert ProbeCodes.from_tensors(tensors, tmp_path / "p", 2, 3).splits.tolist() == [0, 0, 0]
    bad = probe.to_tensors()
    bad["splits"] = torch.tensor([0, 2, 0], dtype=torch.int8)
    with pytest.raises(Exception, match="splits that are not 0"):
        ProbeCodes.from_tensors(bad, tmp_path / "p", 2, 3)


def test_a_movie_of_other_splits_starts_afresh_and_keeps_its_splits(tmp_path):
    movie = ProbeMovie()
    codes = np.zeros((3, 2), np.float32)
    movie.add(ProbeCodes(codes, np.zeros(3, np.int64), np.arange(3), 1))
    movie.add(ProbeCodes(codes, np.zeros(3, np.int64), np.arange(3), 2, np.array([0, 1, 1], np.int8)))
    assert len(movie) == 1, "the same indices in other splits are other points"
    movie.save(tmp_path)
    assert ProbeMovie.load(tmp_path, 2).frame(0).splits.tolist() == [0, 1, 1]


def test_export_embeddings_of_every_image_names_each_rows_split(tmp_path, digits):
    run_parent = tmp_path / "runs"
    Trainer(DIGITS, small_model("vae"), quick_train(epochs=1), dataset=digits, run_parent=run_parent,
            run_name="r").run_to_end()
    out = tmp_path / "all.csv"
    assert main(["export", "embeddings", str(run_parent / "r"), "--out", str(out), "--set", "all"]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("index,label,class,split,split_index,z0,z1")
    assert len(lines) == 1 + len(digits.val) + len(digits.train)
    assert lines[1].split(",")[3:5] == ["validation", "0"] and lines[-1].split(",")[3] == "train"
    npz = tmp_path / "train.npz"
    assert main(["export", "embeddings", str(run_parent / "r"), "--out", str(npz), "--set", "train"]) == 0
    with np.load(npz) as f:
        assert len(f["codes"]) == len(digits.train) and (f["splits"] == SPLIT_TRAIN).all()


def test_fitting_the_raw_map_to_finite_codes_copies_no_rows():
    from engine.projection import _finite_rows
    codes = np.random.default_rng(0).normal(size=(100, 3))
    assert _finite_rows(codes) is codes, "70,000 probe codes are not copied each probe update"
    codes[5, 1] = np.nan
    assert len(_finite_rows(codes)) == 99


def test_the_raw_maps_fit_leaves_the_inverse_base_until_a_drag_asks_for_it():
    from engine.projection import IdentityProjection
    codes = np.random.default_rng(0).normal(size=(1000, 4)).astype(np.float32)
    codes[3] = np.nan
    projection = IdentityProjection(dims=(2, 0)).fit(codes)
    assert projection._base is None, "a probe update's refit computes no mean"
    xy = projection.transform(codes[:5])
    assert xy.dtype == np.float64 and np.array_equal(xy[1], codes[1, [2, 0]].astype(np.float64))
    back = projection.inverse([[1.0, 2.0]])[0]
    finite = codes[np.isfinite(codes).all(axis=1)].astype(np.float64)
    np.testing.assert_allclose(back[[1, 3]], finite.mean(axis=0)[[1, 3]])
    assert back[2] == 1.0 and back[0] == 2.0
    with pytest.raises(ValueError):
        IdentityProjection().fit(np.zeros((0, 2)))
