"""engine/export.py directly: embeddings as NPZ and CSV (with map coordinates), the labels a
conditional model is decoded with, and the traversal's steps in marginal standard deviations."""

import csv
import types

import numpy as np
import pytest
import torch

from engine.datasets import ImageSet
from engine.errors import UserError
from engine.export import (
    embeddings,
    interpolation_grid,
    marginal_std,
    reconstruction_grid,
    sample_grid,
    save_embeddings,
    save_grid,
    traversal_grid,
)
from engine.models import build_model
from tests.engine.helpers import small_model

SHAPE = (1, 8, 8)


def images(n: int = 12, n_classes: int = 3) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, *SHAPE), generator=g, dtype=torch.uint8)
    return ImageSet(x, torch.arange(n) % n_classes, [f"class {i}" for i in range(n_classes)])


def model_of(variant: str, latent_dim: int = 3, n_classes: int = 3):
    torch.manual_seed(0)
    return build_model(small_model(variant, latent_dim=latent_dim), SHAPE, n_classes).eval()


def record_decodes(model):
    """Replace ``model.decode`` by a spy that records every (codes, labels) it is called with."""
    calls = []
    original = model.decode

    def decode(self, z, y=None):
        calls.append((z.clone(), None if y is None else torch.as_tensor(y).clone()))
        return original(z, y)

    model.decode = types.MethodType(decode, model)
    return calls


# -- embeddings ---------------------------------------------------------------------------------
def test_npz_holds_codes_labels_coordinates_and_class_names(tmp_path):
    model, data = model_of("ae"), images()
    codes, labels = embeddings(model, data)
    with torch.no_grad():
        expected = model.encode(data.images.float() / 255.0).numpy()
    np.testing.assert_allclose(codes, expected, rtol=1e-5, atol=1e-6)
    xy = np.stack([np.arange(12.0), -np.arange(12.0)], axis=1).astype(np.float32)
    path = save_embeddings(codes, labels, tmp_path / "codes.npz", data.class_names, xy=xy)
    with np.load(path) as f:
        assert set(f.files) == {"codes", "labels", "xy", "class_names"}
        np.testing.assert_array_equal(f["codes"], codes)
        np.testing.assert_array_equal(f["labels"], data.labels.numpy())
        np.testing.assert_array_equal(f["xy"], xy)
        assert f["class_names"].tolist() == data.class_names
    bare = save_embeddings(codes, labels, tmp_path / "bare.npz")
    with np.load(bare) as f:
        assert set(f.files) == {"codes", "labels"}


def test_csv_rows_carry_class_names_and_map_coordinates(tmp_path):
    model, data = model_of("ae"), images()
    codes, labels = embeddings(model, data)
    xy = np.stack([np.linspace(0, 1, 12), np.linspace(5, 6, 12)], axis=1)
    path = save_embeddings(codes, labels, tmp_path / "codes.csv", data.class_names, xy=xy)
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["index", "label", "class", "x", "y", "z0", "z1", "z2"]
    assert len(rows) == 13
    for i, row in enumerate(rows[1:]):
        assert row[:3] == [str(i), str(i % 3), f"class {i % 3}"]
        np.testing.assert_allclose([float(v) for v in row[3:5]], xy[i], rtol=1e-5)
        np.testing.assert_allclose([float(v) for v in row[5:]], codes[i], rtol=1e-5, atol=1e-6)


def test_bad_embedding_targets_are_refused(tmp_path):
    codes, labels = np.zeros((2, 2), np.float32), np.zeros(2, np.int64)
    with pytest.raises(UserError, match="use .csv or .npz"):
        save_embeddings(codes, labels, tmp_path / "codes.txt")
    with pytest.raises(UserError, match="does not exist"):
        save_embeddings(codes, labels, tmp_path / "nowhere" / "codes.csv")
    assert list(tmp_path.iterdir()) == []


# -- conditional labels -----------------------------------------------------------------------------
def test_conditional_samples_cycle_the_classes_or_take_the_one_asked():
    model = model_of("cvae")
    calls = record_decodes(model)
    sample_grid(model, n=7, nrow=7)
    assert calls[-1][1].tolist() == [0, 1, 2, 0, 1, 2, 0]
    sample_grid(model, n=4, nrow=4, label=2)
    assert calls[-1][1].tolist() == [2, 2, 2, 2]
    with pytest.raises(UserError, match="between 0 and 2"):
        sample_grid(model, n=4, label=3)


def test_conditional_reconstruction_and_interpolation_use_each_image_label():
    model, data = model_of("cvae"), images(8)
    calls = record_decodes(model)
    reconstruction_grid(model, data, n=8, nrow=4)
    assert calls[-1][1].tolist() == data.labels[:8].tolist()
    interpolation_grid(model, data, pairs=3, steps=5)
    z, y = calls[-1]
    assert y.tolist() == [0] * 5 + [2] * 5 + [1] * 5  # the first image of each pair: 0, 2, 4 -> labels 0, 2, 1
    with torch.no_grad():
        codes = model.encode(data.images[:6].float() / 255.0, data.labels[:6])
    torch.testing.assert_close(z[0], codes[0])    # each row runs from the first code of its pair...
    torch.testing.assert_close(z[4], codes[1])    # ...to the second
    traversal_grid(model, steps=3, label=1)
    assert set(calls[-1][1].tolist()) == {1}


def test_unconditional_models_decode_without_labels():
    model = model_of("vae")
    calls = record_decodes(model)
    sample_grid(model, n=4, nrow=2, label=1)
    assert calls[-1][1] is None


# -- traversal -------------------------------------------------------------------------------------
def test_traversal_steps_in_marginal_standard_deviations():
    model = model_of("ae", latent_dim=2)
    cov = torch.tensor([[4.0, 3.0], [3.0, 9.0]])  # marginal sds 2 and 3; Cholesky diagonal 2 and 2.6
    model.code_chol.copy_(torch.linalg.cholesky(cov))
    model.code_mean.copy_(torch.tensor([1.0, -1.0]))
    torch.testing.assert_close(marginal_std(model), torch.tensor([2.0, 3.0]))
    calls = record_decodes(model)
    grid = traversal_grid(model, steps=5, span=2.0)
    codes = calls[-1][0]
    assert codes.shape == (10, 2)
    torch.testing.assert_close(codes[:5, 0], torch.tensor([-3.0, -1.0, 1.0, 3.0, 5.0]))   # 1 ± 2·2
    torch.testing.assert_close(codes[:5, 1], torch.full((5,), -1.0))
    torch.testing.assert_close(codes[5:, 1], torch.tensor([-7.0, -4.0, -1.0, 2.0, 5.0]))  # −1 ± 2·3
    assert grid.shape == (3, 2 * 10 + 2, 5 * 10 + 2)


def test_vae_traversal_steps_in_prior_units():
    model = model_of("vae", latent_dim=2)
    calls = record_decodes(model)
    traversal_grid(model, dims=[1], steps=3, span=3.0)
    torch.testing.assert_close(calls[-1][0], torch.tensor([[0.0, -3.0], [0.0, 0.0], [0.0, 3.0]]))
    with pytest.raises(UserError, match="between 0 and 1"):
        traversal_grid(model, dims=[2])


def test_a_failed_grid_export_keeps_the_old_file(tmp_path):
    target = tmp_path / "grid.png"
    target.write_bytes(b"old")
    grid = sample_grid(model_of("vae"), n=4, nrow=2)
    with pytest.raises(UserError, match="Cannot write an image"):
        save_grid(grid, tmp_path / "grid.txt")
    assert target.read_bytes() == b"old"
    save_grid(grid, target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the map's coordinates as CSV ----------------------------------------------------------------------
def test_map_csv_has_index_label_class_coordinates_and_the_coloured_value(tmp_path):
    from engine.export import save_map_csv
    xy = np.array([[0.5, -1.25], [2.0, 3.0], [np.nan, 1.0]])
    path = save_map_csv(tmp_path / "map.csv", xy, np.array([2, 0, 1]), np.array([10, 4, 7]),
                        value=np.array([1.5, 0.25, 3.0]), value_name="reconstruction_bce",
                        class_names=["zero", "one", "two"])
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["index", "label", "class", "x", "y", "reconstruction_bce"]
    assert [(r["index"], r["label"], r["class"]) for r in rows] == [("10", "2", "two"), ("4", "0", "zero"),
                                                                   ("7", "1", "one")]
    np.testing.assert_allclose([[float(r["x"]), float(r["y"])] for r in rows], xy)
    np.testing.assert_allclose([float(r["reconstruction_bce"]) for r in rows], [1.5, 0.25, 3.0])
    plain = save_map_csv(tmp_path / "plain.csv", xy[:2], [0, 1], [0, 1])
    assert plain.read_text().splitlines()[:2] == ["index,label,class,x,y", "0,0,0,0.5,-1.25"]


def test_map_csv_refuses_mismatched_columns_and_bad_targets(tmp_path):
    from engine.export import save_map_csv
    xy = np.zeros((3, 2))
    with pytest.raises(UserError, match="3 points but 2 indices"):
        save_map_csv(tmp_path / "m.csv", xy, [0, 1, 2], [0, 1])
    with pytest.raises(UserError, match="3 points but 1 values"):
        save_map_csv(tmp_path / "m.csv", xy, [0, 1, 2], [0, 1, 2], value=[1.0])
    with pytest.raises(UserError, match="cannot be called 'x'"):
        save_map_csv(tmp_path / "m.csv", xy, [0, 1, 2], [0, 1, 2], value=[1.0, 2.0, 3.0], value_name="x")
    with pytest.raises(UserError, match="use .csv"):
        save_map_csv(tmp_path / "m.txt", xy, [0, 1, 2], [0, 1, 2])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("variant, standard", [("vae", True), ("wae_mmd", True), ("iwae", True),
                                               ("aae", False), ("ae", False)])
def test_traversals_span_prior_sd_exactly_where_the_prior_is_standard_normal(variant, standard):
    """The WAE's codes are pulled towards N(0, I) though its encoder is deterministic; an AAE's
    prior is the one chosen (a mixture, a swiss roll...), so its codes are spanned by their own spread."""
    from engine.export import traversal_codes, traversal_unit
    from engine.models import has_standard_normal_prior
    model = model_of(variant)
    with torch.no_grad():
        model.code_mean.fill_(5.0)   # the fitted codes' mean, used by the AE and the AAE
    codes, _, _ = traversal_codes(model, dims=[0], steps=3)
    assert has_standard_normal_prior(model) is standard
    assert traversal_unit(model) == ("prior standard deviations" if standard else
                                     "marginal standard deviations of the codes")
    assert float(codes[1, 1]) == pytest.approx(0.0 if standard else 5.0)
