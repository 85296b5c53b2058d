"""Per-point values for colouring the map: reconstruction error (BCE or squared error, per image,
summed over pixels), the KL of each point, and the distance to the nearest other code."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.models import build_model
from engine.point_values import (
    available_values,
    describe,
    nearest_code_distance,
    point_kl,
    point_values,
    reconstruction_error,
)
from tests.engine.helpers import small_model

SHAPE = (1, 8, 8)


def images(n: int = 40) -> torch.Tensor:
    return torch.randint(0, 256, (n, *SHAPE), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)


def model_of(variant: str, likelihood: str = "bernoulli", latent_dim: int = 3):
    torch.manual_seed(0)
    cfg = dataclasses.replace(small_model(variant, latent_dim=latent_dim), likelihood=likelihood)
    return build_model(cfg, SHAPE, 3).eval()


def test_bernoulli_error_is_the_per_image_bce_summed_over_pixels():
    model, x = model_of("vae"), images()
    values = reconstruction_error(model, x)
    xf = x.float() / 255
    with torch.no_grad():
        logits = model.decode_logits(model.encode(xf))
    expected = F.binary_cross_entropy_with_logits(logits, xf, reduction="none").flatten(1).sum(1)
    assert values.shape == (40,) and values.dtype == np.float64
    np.testing.assert_allclose(values, expected.numpy(), rtol=1e-5)
    # its batch mean is the model's reconstruction term on the posterior mean
    assert values.mean() == pytest.approx(float(F.binary_cross_entropy_with_logits(logits, xf, reduction="sum")) / 40,
                                          rel=1e-5)
    assert "binary cross-entropy" in describe("reconstruction_error", model).description


def test_gaussian_error_is_the_squared_error_of_the_decoded_mean():
    model, x = model_of("ae", likelihood="gaussian"), images()
    xf = x.float() / 255
    with torch.no_grad():
        expected = (model.reconstruct(xf) - xf).pow(2).flatten(1).sum(1)
    np.testing.assert_allclose(reconstruction_error(model, xf), expected.numpy(), rtol=1e-5)  # floats too
    assert "squared error" in describe("reconstruction_error", model).description


def test_a_worse_reconstruction_has_a_larger_error():
    model = model_of("ae", likelihood="gaussian")
    x = images(1).float() / 255
    with torch.no_grad():
        good = model.reconstruct(x)
    far = (1 - good)  # the image farthest from what the model reconstructs
    assert reconstruction_error(model, far)[0] > reconstruction_error(model, good)[0]


def test_kl_of_each_point_is_the_closed_form_of_its_posterior():
    model, x = model_of("vae"), images()
    kl = point_kl(model, x)
    with torch.no_grad():
        mu, logvar = model.posterior(x.float() / 255)
    expected = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
    np.testing.assert_allclose(kl, expected.numpy(), rtol=1e-5)
    assert (kl >= 0).all()
    assert "nats" in describe("kl", model).description


def test_conditional_models_use_the_labels():
    model, x = model_of("cvae"), images(9)
    labels = torch.arange(9) % 3
    a = point_kl(model, x, labels)
    b = point_kl(model, x, (labels + 1) % 3)
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="conditional"):
        reconstruction_error(model, x)


def test_kl_applies_only_to_variants_with_a_density():
    assert available_values("vae") == ["reconstruction_error", "kl", "nearest_distance"]
    assert available_values("ae") == ["reconstruction_error", "nearest_distance"]
    with pytest.raises(ValueError, match="no encoder distribution"):
        point_kl(model_of("ae"), images())


def test_nearest_distance_is_to_the_closest_other_code():
    codes = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 5.0], [np.nan, 0.0], [10.0, 10.0]])
    d = nearest_code_distance(codes)
    np.testing.assert_allclose(d[:3], [5.0, 1.0, 1.0])
    assert np.isnan(d[3])
    assert d[4] == pytest.approx(np.hypot(7, 5))
    assert nearest_code_distance(np.array([[1.0, 2.0], [1.0, 2.0]])).tolist() == [0.0, 0.0]  # duplicates
    assert np.isnan(nearest_code_distance(np.ones((1, 2)))).all()


def test_point_values_by_kind():
    model, x = model_of("vae"), images()
    with torch.no_grad():
        codes = model.encode(x.float() / 255).numpy()
    np.testing.assert_allclose(point_values("nearest_distance", model, x), nearest_code_distance(codes), rtol=1e-5)
    np.testing.assert_allclose(point_values("kl", model, x), point_kl(model, x))
    with pytest.raises(ValueError, match="Unknown point value"):
        point_values("sharpness", model, x)
