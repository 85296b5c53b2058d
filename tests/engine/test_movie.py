"""The training movie: probe codes of every probe update kept as float16 frames, thinned evenly,
saved and loaded atomically with one-sentence errors, and exported as GIF/MP4 (read back with
imageio); traversals and interpolations as animations too."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from engine import export
from engine.cli import main
from engine.errors import RunError, UserError
from engine.history import ProbeCodes
from engine.movie import MOVIE, ProbeMovie, frame_budget
from engine.runs import Run
from engine.training import Trainer
from tests.engine.helpers import DIGITS, quick_train, small_model


def probe(step: int, n: int = 5, d: int = 2, value: float | None = None) -> ProbeCodes:
    codes = np.full((n, d), float(step) if value is None else value, np.float32)
    return ProbeCodes(codes, np.arange(n) % 3, np.arange(n) * 2, step)


def train_with_movie(out, latent_dim: int = 2, name: str = "movie-run", variant: str = "vae"):
    """Train a small run; the trainer records its movie (movie.safetensors) from every probe update."""
    trainer = Trainer(DIGITS, small_model(variant, latent_dim=latent_dim), quick_train(2), run_parent=out, run_name=name)
    probes = [update.probe for update in trainer.updates() if update.probe is not None]
    run = Run.open(trainer.run.path)
    return run, ProbeMovie.load(run.path, latent_dim), probes


def test_a_resumed_run_continues_its_movie(tmp_path):
    run, movie, _ = train_with_movie(tmp_path)
    Trainer.resume(run, 3).run_to_end()
    again = ProbeMovie.load(run.path, 2)
    assert len(again) > len(movie) and again.steps[: len(movie)].tolist() == movie.steps.tolist()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return train_with_movie(tmp_path_factory.mktemp("runs"))


# -- the frames ------------------------------------------------------------------------------------
def test_the_movie_keeps_each_probe_update_of_a_training_run(recorded):
    run, movie, probes = recorded
    steps = sorted({p.step for p in probes})
    assert len(movie) == len(steps) > 3
    assert movie.steps.tolist() == steps  # one frame per step; a later probe of the same step replaces it
    last = [p for p in probes if p.step == steps[-1]][-1]
    np.testing.assert_allclose(movie.frame(-1).codes, last.codes, rtol=2e-3, atol=2e-3)  # float16
    assert movie.codes().dtype == np.float16 and movie.codes().shape == (len(steps), 180, 2)
    np.testing.assert_array_equal(movie.labels, last.labels)
    np.testing.assert_array_equal(movie.indices, last.indices)
    assert not np.array_equal(movie.frame(0).codes, movie.frame(-1).codes)  # the codes moved in training


def test_a_full_movie_drops_every_other_frame_and_keeps_the_newest():
    movie = ProbeMovie(max_frames=8)
    for step in range(1, 41):
        movie.add(probe(step))
        assert len(movie) <= 8
        assert movie.steps[-1] == step  # the newest update is always the last frame
    kept = movie.steps.tolist()
    assert kept[0] == 1
    gaps = np.diff(kept[:-1])
    assert len(set(gaps.tolist())) == 1 and gaps[0] == movie.stride == 8  # evenly spaced in probe updates
    np.testing.assert_array_equal(movie.frame(3).codes, np.full((5, 2), kept[3], np.float32))


def test_the_frame_budget_keeps_a_movie_within_64_mib():
    assert frame_budget(5000, 2) == 400
    assert frame_budget(5000, 16) == 400
    assert frame_budget(5000, 64) == 104            # 64 MiB of float16 5000×64 frames
    assert frame_budget(70_000, 64) == 16            # never fewer than 16
    movie = ProbeMovie()
    movie.add(probe(0, n=5000, d=64))
    assert movie.max_frames == 104


def test_a_resumed_run_rewinds_and_a_new_probe_set_starts_afresh():
    movie = ProbeMovie()
    for step in (0, 10, 20, 30):
        movie.add(probe(step))
    movie.add(probe(20, value=-1.0))                 # resumed from the checkpoint at step 20
    assert movie.steps.tolist() == [0, 10, 20]
    assert movie.frame(-1).codes[0, 0] == -1.0
    other = ProbeCodes(np.zeros((7, 2), np.float32), np.zeros(7, np.int64), np.arange(7), 40)
    movie.add(other)
    assert movie.steps.tolist() == [40] and movie.n_points == 7
    assert movie.frame_at(1000) == 0


def test_codes_beyond_float16_are_clipped_not_infinite():
    movie = ProbeMovie()
    movie.add(ProbeCodes(np.array([[1e6, -1e6], [np.nan, 0.0]], np.float32), np.zeros(2), np.arange(2), 1))
    codes = movie.frame(0).codes
    assert np.isfinite(codes[0]).all() and codes[0, 0] > 6e4 and np.isnan(codes[1, 0])


# -- the file ----------------------------------------------------------------------------------------
def test_save_and_load_round_trip(tmp_path):
    movie = ProbeMovie(max_frames=8)
    for step in range(1, 20):
        movie.add(probe(step, d=3))
    movie.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [MOVIE]  # no temporary file left
    loaded = ProbeMovie.load(tmp_path, latent_dim=3)
    assert loaded.steps.tolist() == movie.steps.tolist()
    np.testing.assert_array_equal(loaded.codes(), movie.codes())
    np.testing.assert_array_equal(loaded.labels, movie.labels)
    np.testing.assert_array_equal(loaded.indices, movie.indices)
    assert (loaded.stride, loaded.seen, loaded.max_frames) == (movie.stride, movie.seen, 8)
    for step in range(20, 40):  # it goes on thinning as the original would
        movie.add(probe(step, d=3))
        loaded.add(probe(step, d=3))
    assert loaded.steps.tolist() == movie.steps.tolist()


def test_an_empty_movie_writes_nothing_and_a_run_without_one_loads_none(tmp_path):
    assert ProbeMovie().save(tmp_path) is None
    assert ProbeMovie.load(tmp_path, latent_dim=2) is None


def test_the_run_folder_gives_the_latent_size(recorded):
    run, movie, _ = recorded
    assert ProbeMovie.load(run.path).steps.tolist() == movie.steps.tolist()


@pytest.mark.parametrize("damage,message", [
    (lambda p: p.write_bytes(b"not a safetensors file"), "damaged or truncated"),
    (lambda p: p.write_bytes(p.read_bytes()[:-40]), "damaged or truncated"),
])
def test_a_damaged_movie_is_one_sentence(tmp_path, damage, message):
    movie = ProbeMovie()
    for step in range(3):
        movie.add(probe(step))
    path = movie.save(tmp_path)
    damage(path)
    with pytest.raises(RunError, match=message) as info:
        ProbeMovie.load(tmp_path, latent_dim=2)
    assert "\n" not in str(info.value)


def test_a_movie_of_another_latent_size_or_shape_is_refused(tmp_path):
    from engine.storage import write_tensors
    movie = ProbeMovie()
    movie.add(probe(0, d=3))
    movie.save(tmp_path)
    with pytest.raises(RunError, match="3-D codes, which do not fit the run's latent size 2"):
        ProbeMovie.load(tmp_path, latent_dim=2)
    meta = {"format": "latent-explorer-movie", "version": "1", "stride": "1", "seen": "2"}
    base = {"codes": torch.zeros(2, 4, 2, dtype=torch.float16), "steps": torch.tensor([0, 5]),
            "ordinals": torch.tensor([0, 1]), "labels": torch.zeros(4, dtype=torch.int64),
            "indices": torch.arange(4)}
    for change, message in ((dict(labels=torch.zeros(3, dtype=torch.int64)), "do not match"),
                            (dict(steps=torch.tensor([5, 0])), "not in the order of training"),
                            (dict(codes=torch.zeros(2, 4)), "does not hold frames")):
        write_tensors(tmp_path / MOVIE, {**base, **change}, meta)
        with pytest.raises(RunError, match=message):
            ProbeMovie.load(tmp_path, latent_dim=2)
    write_tensors(tmp_path / MOVIE, {k: v for k, v in base.items() if k != "steps"}, meta)
    with pytest.raises(RunError, match="lacks the 'steps' array"):
        ProbeMovie.load(tmp_path, latent_dim=2)
    write_tensors(tmp_path / MOVIE, base, {**meta, "format": "something else"})
    with pytest.raises(RunError, match="not a Latent Explorer training movie"):
        ProbeMovie.load(tmp_path, latent_dim=2)


# -- the export --------------------------------------------------------------------------------------
def test_the_movie_exports_a_gif_with_a_frame_per_probe_update(recorded, tmp_path):
    run, movie, _ = recorded
    path = export.export_movie(run, tmp_path / "map.gif", fps=5)
    frames = iio.imread(path, index=None)
    assert frames.shape[0] == len(movie) > 1
    assert frames.shape[1] % 16 == 0 and frames.shape[2] % 16 == 0 and frames.shape[3] >= 3
    assert not np.array_equal(frames[0], frames[-1])  # the points moved and the step changed
    assert iio.immeta(path, index=0)["duration"] == 200


def test_the_cli_exports_the_movie_at_a_chosen_point(recorded, tmp_path, capsys):
    run, movie, _ = recorded
    out = tmp_path / "map.gif"
    assert main(["export", "movie", str(run.path), "--out", str(out), "--point", "0.5,-0.5", "--fps", "4"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert iio.imread(out, index=None).shape[0] == len(movie)


def test_the_decoded_panel_follows_the_point_and_the_map_marks_it(recorded):
    run, movie, _ = recorded
    model = run.load_model()
    a = export.movie_frames(movie, model, point=(0.0, 0.0))[0]
    b = export.movie_frames(movie, model, point=(2.0, 2.0))[0]
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_a_larger_latent_is_laid_out_by_pca_of_the_last_frame(tmp_path):
    from engine.projection import PCAProjection
    run, movie, _ = train_with_movie(tmp_path, latent_dim=4, name="z4")
    xy, projection, axes = export.movie_layout(movie)
    assert xy.shape == (len(movie), movie.n_points, 2) and axes == ("PC1", "PC2")
    expected = PCAProjection().fit(movie.frame(-1).codes).transform(movie.frame(-1).codes)
    np.testing.assert_allclose(xy[-1], expected, rtol=1e-4, atol=1e-4)
    frames = iio.imread(export.export_movie(run, tmp_path / "z4.gif"), index=None)
    assert frames.shape[0] == len(movie)


def test_a_run_without_a_movie_or_a_bad_target_is_one_sentence(tmp_path, capsys):
    trainer = Trainer(DIGITS, small_model("ae"), quick_train(1), run_parent=tmp_path, run_name="plain")
    trainer.run_to_end()
    run_dir = str(trainer.run.path)
    (trainer.run.path / MOVIE).unlink()   # a run folder written before the trainer kept a movie
    assert main(["export", "movie", run_dir, "--out", str(tmp_path / "m.gif")]) == 2
    assert "has no training movie" in capsys.readouterr().err
    for out, message in (("m.png", "use .gif or .mp4"), ("nowhere/m.gif", "does not exist")):
        assert main(["export", "movie", run_dir, "--out", str(tmp_path / out)]) == 2
        assert message in capsys.readouterr().err
    assert main(["export", "movie", run_dir, "--out", str(tmp_path / "m.gif"), "--fps", "0"]) == 2
    assert "frame rate" in capsys.readouterr().err
    assert main(["export", "movie", run_dir, "--out", str(tmp_path / "m.gif"), "--point", "1"]) == 2
    assert "X,Y" in capsys.readouterr().err
    assert main(["export", "samples", run_dir, "--out", str(tmp_path / "s.gif")]) == 2
    assert "Only traversal, interpolation and movie" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.gif")) and not list(tmp_path.glob("*.png"))


def test_mp4_without_imageio_ffmpeg_says_what_to_install(recorded, tmp_path, monkeypatch, capsys):
    run, _, _ = recorded
    import importlib.util
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "imageio_ffmpeg" else find_spec(name, *a))
    assert main(["export", "movie", str(run.path), "--out", str(tmp_path / "map.mp4")]) == 2
    assert "pip install 'latent-explorer[video]'" in capsys.readouterr().err
    with pytest.raises(UserError, match="imageio-ffmpeg"):
        export.save_animation([np.zeros((16, 16, 3), np.uint8)] * 2, tmp_path / "t.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exe", ["missing", "exits-1"])
def test_a_broken_ffmpeg_is_one_sentence_not_a_key_error(recorded, tmp_path, monkeypatch, capsys, exe):
    """Fault 6: imageio-ffmpeg present but its ffmpeg broken ended in imageio's KeyError: None
    (or an OSError, or an empty file); the writer is tried before any work."""
    pytest.importorskip("imageio_ffmpeg")
    run, _, _ = recorded
    broken = tmp_path / "bin" / "ffmpeg"
    if exe == "exits-1":
        broken.parent.mkdir()
        broken.write_text("#!/bin/sh\nexit 1\n")
        broken.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(broken))   # the exe lookup imageio-ffmpeg makes first
    assert not export.video_available()
    out = tmp_path / "map.mp4"
    assert main(["export", "movie", str(run.path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Writing MP4 does not work here: imageio-ffmpeg is installed but its ffmpeg failed" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and not out.exists()


@pytest.mark.skipif(not export.video_available(), reason="imageio-ffmpeg (the video extra) is not installed")
def test_the_movie_exports_an_mp4(recorded, tmp_path):
    run, movie, _ = recorded
    path = export.export_movie(run, tmp_path / "map.mp4", fps=5)
    frames = iio.imread(path, index=None, plugin="FFMPEG")
    assert frames.shape[0] == len(movie)


def test_traversal_and_interpolation_export_as_animations(recorded, tmp_path):
    run, _, _ = recorded
    out = tmp_path / "t.gif"
    assert main(["export", "traversal", str(run.path), "--out", str(out)]) == 0
    frames = iio.imread(out, index=None)
    assert frames.shape[0] == 2 * 9 - 2              # 9 steps along the sweep, forward and back
    assert not np.array_equal(frames[0], frames[4])
    np.testing.assert_array_equal(frames[1], frames[-1])  # the way back mirrors the way out
    out = tmp_path / "i.gif"
    assert main(["export", "interpolation", str(run.path), "--out", str(out), "--fps", "20"]) == 0
    frames = iio.imread(out, index=None)
    assert frames.shape[0] == 2 * 10 - 2 and not np.array_equal(frames[0], frames[9])
    assert main(["export", "traversal", str(run.path), "--out", str(tmp_path / "t.png")]) == 0  # a grid as before


def test_traversal_frames_decode_the_sweep_of_each_dimension():
    from engine.models import build_model
    torch.manual_seed(0)
    model = build_model(small_model("vae", latent_dim=3), (1, 8, 8), 3).eval()
    frames = export.traversal_frames(model, dims=[0, 2], steps=5, span=2.0)
    assert len(frames) == 8
    assert frames[0].shape == frames[3].shape and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[2])
    np.testing.assert_array_equal(frames[1], frames[7])  # forward, then back
