"""Metrics per run: the importance-sampled NLL against an exact marginal, and every other
metric on a small trained digits model, metrics.json, the stop flag, the CLI."""

import json
import math
import threading
import types

import pytest
import torch

from engine.batches import binarized_validation
from engine.cli import main
from engine.datasets import ImageSet, load_dataset
from engine.errors import RunError
from engine.history import check_metrics
from engine.metrics import (
    ACTIVE_UNIT_THRESHOLD,
    EvaluationStopped,
    binarized,
    evaluate_model,
    evaluate_run,
    importance_sampled_log_likelihood,
    run_binarizes,
    staleness,
)
from engine.models.base import LOG_2PI, Densities, diagonal_normal_log_pdf, standard_normal_log_pdf
from engine.runs import Run
from engine.training import Trainer
from tests.engine.helpers import DIGITS, quick_train, small_model


# -- probabilistic PCA: a linear-Gaussian VAE whose log p(x) is closed-form ----------------------
class LinearGaussianVAE(torch.nn.Module):
    """x = W z + b + σ ε with z ~ N(0, I) and ε ~ N(0, I), so p(x) = N(x; b, W Wᵀ + σ² I).

    W has orthogonal columns, so the exact posterior N(M⁻¹Wᵀ(x − b), σ² M⁻¹), M = WᵀW + σ² I, is
    diagonal and fits the VAE's (mu, logvar) contract.  ``shift`` and ``widen`` make the encoder
    approximate: its mean moves by ``shift`` and its standard deviation is multiplied by ``widen``.
    The same ``posterior``/``log_densities`` contract as ``engine.models.vae.VAE``, in float64,
    with a Gaussian log p(x|z)."""

    is_conditional = False

    def __init__(self, x_dim: int = 6, z_dim: int = 2, sigma: float = 0.5, shift: float = 0.0, widen: float = 1.0):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        q, _ = torch.linalg.qr(torch.randn(x_dim, z_dim, generator=g, dtype=torch.float64))
        self.W = q * torch.tensor([2.0, 0.7], dtype=torch.float64)[:z_dim]
        self.b = torch.randn(x_dim, generator=g, dtype=torch.float64)
        self.sigma, self.shift, self.widen = sigma, shift, widen
        self.latent_dim = z_dim

    def sample_data(self, n: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=g, dtype=torch.float64)
        return z @ self.W.T + self.b + self.sigma * torch.randn(n, len(self.b), generator=g, dtype=torch.float64)

    def exact_log_px(self, x: torch.Tensor) -> torch.Tensor:
        cov = self.W @ self.W.T + self.sigma ** 2 * torch.eye(len(self.b), dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x)

    def posterior(self, x, y=None):
        m = (self.W * self.W).sum(0) + self.sigma ** 2          # the diagonal of M
        mu = (x - self.b) @ self.W / m + self.shift
        logvar = torch.log(self.sigma ** 2 / m * self.widen ** 2).expand_as(mu)
        return mu, logvar

    def log_densities(self, x, y=None, k: int = 1) -> Densities:
        mu, logvar = self.posterior(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(k, *mu.shape, dtype=mu.dtype)
        mean = z @ self.W.T + self.b
        log_px_z = -0.5 * (((x - mean) / self.sigma).pow(2) + LOG_2PI + 2 * math.log(self.sigma)).sum(-1)
        return Densities(z, diagonal_normal_log_pdf(z, mu, logvar), log_px_z, standard_normal_log_pdf(z))


def test_exact_posterior_gives_the_exact_marginal_for_any_k():
    model = LinearGaussianVAE()
    x = model.sample_data(50)
    exact = model.exact_log_px(x)
    torch.manual_seed(0)
    for k, chunk in ((1, None), (7, 3), (100, 16)):
        estimate = importance_sampled_log_likelihood(model, x, k=k, chunk=chunk)
        assert estimate.shape == (50,)
        torch.testing.assert_close(estimate, exact, rtol=0, atol=1e-9)


def test_approximate_posterior_converges_to_the_marginal_as_k_grows():
    model = LinearGaussianVAE(shift=0.4, widen=1.6)
    x = model.sample_data(200)
    exact = model.exact_log_px(x)
    torch.manual_seed(0)
    gaps = {k: float((exact - importance_sampled_log_likelihood(model, x, k=k, chunk=500)).mean())
            for k in (1, 10, 100, 3000)}
    # the estimate of log p(x) is biased low (Jensen), and the bias shrinks as K grows
    assert gaps[1] > gaps[10] > gaps[100] > gaps[3000] > -0.01
    assert gaps[1] > 0.3
    assert gaps[3000] < 0.01


def test_chunks_bound_the_samples_drawn_at_once():
    model = LinearGaussianVAE(shift=0.3)
    drawn = []
    original = model.log_densities

    def spy(x, y=None, k=1):
        drawn.append(k)
        return original(x, y, k)

    model.log_densities = spy
    importance_sampled_log_likelihood(model, model.sample_data(4), k=1000, chunk=300)
    assert drawn == [300, 300, 300, 100]


class BankedLinearGaussianVAE(LinearGaussianVAE):
    """Draws its posterior noise from a fixed bank, sample after sample, so an estimate from K
    samples in chunks uses exactly the samples of the estimate from all K at once."""

    def __init__(self, n: int, k: int, **kw):
        super().__init__(**kw)
        self.bank = torch.randn(k, n, self.latent_dim, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        self.used = 0

    def log_densities(self, x, y=None, k: int = 1) -> Densities:
        mu, logvar = self.posterior(x)
        z = mu + torch.exp(0.5 * logvar) * self.bank[self.used:self.used + k]
        self.used += k
        mean = z @ self.W.T + self.b
        log_px_z = -0.5 * (((x - mean) / self.sigma).pow(2) + LOG_2PI + 2 * math.log(self.sigma)).sum(-1)
        return Densities(z, diagonal_normal_log_pdf(z, mu, logvar), log_px_z, standard_normal_log_pdf(z))


def test_the_chunked_estimate_equals_the_unchunked_one_on_the_same_samples():
    x = LinearGaussianVAE().sample_data(20)
    whole = importance_sampled_log_likelihood(BankedLinearGaussianVAE(20, 1000, shift=0.4, widen=1.6), x, k=1000)
    for chunk in (1, 7, 300):
        chunked = importance_sampled_log_likelihood(BankedLinearGaussianVAE(20, 1000, shift=0.4, widen=1.6), x,
                                                    k=1000, chunk=chunk)
        torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-4)


def test_every_block_of_the_nll_passes_is_well_over_the_mmap_threshold(trained, digits, monkeypatch):
    """Blocks of ~31 MB, just under glibc's largest mmap threshold (32 MB), fragmented the heap
    (fault 8); every pass but the last (the images left over) decodes blocks of 32-64 MiB."""
    model = trained.load_model()
    passes = []
    original = model.log_densities

    def spy(x, y=None, k=1):
        passes.append(k * x[0].numel() * x.shape[0] * 4)   # bytes of one float32 tensor of decoded pixels
        return original(x, y, k)

    monkeypatch.setattr(model, "log_densities", spy)
    evaluate_model(model, digits.val, has_density=True, nll_samples=3000)
    assert len(passes) > 2 and all(2**25 < b <= 2**26 for b in passes[:-1]) and passes[-1] <= 2**26


# -- a small trained digits model --------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits):
    """A β-VAE (β = 0.2, so every unit of its 4-D code carries information) trained for a few epochs."""
    trainer = Trainer(DIGITS, small_model("beta_vae", latent_dim=4, beta=0.2), quick_train(epochs=6, batch_size=32),
                      dataset=digits, run_parent=tmp_path_factory.mktemp("runs"))
    assert trainer.run_to_end().status == "completed"
    return trainer.run


def test_metrics_of_a_trained_vae(trained, digits):
    m = evaluate_run(trained, nll_samples=200, dataset=digits)
    n = len(digits.val)
    assert m["images"]["n"] == n and "validation split" in m["images"]["description"]
    assert math.isfinite(m["nll"]) and m["nll"] > 0 and m["nll_samples"] == 200
    # the importance-sampled NLL is a tighter bound than the −ELBO on the same images
    assert m["nll"] <= m["neg_elbo"] + 3 * m["nll_std_error"]
    assert m["elbo"] == pytest.approx(-m["neg_elbo"])
    assert len(m["kl_per_dim"]) == 4 and sum(m["kl_per_dim"]) == pytest.approx(m["kl"])
    assert all(v > 0 for v in m["kl_per_dim"])
    assert m["reconstruction"]["bce"] > 0 and m["reconstruction"]["squared_error"] > 0
    assert m["parameters"] == sum(p.numel() for p in trained.load_model().parameters())
    assert m["training_seconds"] == pytest.approx(sum(trained.history.seconds))
    assert m["training_samples_per_sec"] == pytest.approx(6 * len(digits.train) / m["training_seconds"])
    for key in ("nll", "elbo", "kl", "reconstruction.bce"):
        assert f"on {n} images: " in m["units"][key], (key, m["units"][key])
    # these two measure the same images but do not count them (yet): each says what it counts
    assert f"exceeds {ACTIVE_UNIT_THRESHOLD} " in m["units"]["active_units"], m["units"]["active_units"]
    assert "evaluated images" in m["units"]["knn_accuracy"] and "nearest training codes" in m["units"]["knn_accuracy"]
    assert "not a normalised density" in m["units"]["nll"]  # Bernoulli on grey-level digits says so


def test_active_units_count_units_whose_mean_varies(trained, digits):
    model = trained.load_model()
    m = evaluate_model(model, digits.val, has_density=True, nll_samples=5)
    assert m["active_units"] == 4 and min(m["code_variance"]) > ACTIVE_UNIT_THRESHOLD
    original = model.posterior

    def two_units_fixed(self, x, y=None):
        mu, logvar = original(x, y)
        mu = mu.clone()
        mu[:, :2] = 0.3  # units 0 and 1 no longer depend on the image
        return mu, logvar

    model.posterior = types.MethodType(two_units_fixed, model)
    m = evaluate_model(model, digits.val, has_density=True, nll_samples=5)
    assert m["active_units"] == 2 and m["code_variance"][:2] == [0.0, 0.0]


def test_knn_accuracy_uses_the_training_labels(trained, digits):
    model = trained.load_model()
    m = evaluate_model(model, digits.val, digits.train, has_density=True, nll_samples=5)
    assert m["knn_accuracy"] > 0.5 and m["knn"]["k"] == 5 and m["knn"]["n_train"] == len(digits.train)
    shuffled = digits.train.labels[torch.randperm(len(digits.train), generator=torch.Generator().manual_seed(0))]
    noise = ImageSet(digits.train.images, shuffled, digits.train.class_names)
    assert evaluate_model(model, digits.val, noise, has_density=True, nll_samples=5)["knn_accuracy"] < 0.3
    unlabelled = ImageSet(digits.train.images, torch.zeros(len(digits.train), dtype=torch.long), ["unlabelled"])
    m = evaluate_model(model, digits.val, unlabelled, has_density=True, nll_samples=5)
    assert m["knn_accuracy"] is None and "no labelled" in m["knn"]["note"]


def test_a_model_without_density_has_no_nll(digits, tmp_path):
    trainer = Trainer(DIGITS, small_model("ae", latent_dim=3), quick_train(epochs=1), dataset=digits,
                      run_parent=tmp_path)
    trainer.run_to_end()
    m = evaluate_run(trainer.run, nll_samples=10, dataset=digits)
    assert m["nll"] is None and m["elbo"] is None and m["kl_per_dim"] is None
    assert m["reconstruction"]["bce"] > 0 and m["knn_accuracy"] is not None and 0 <= m["active_units"] <= 3


def test_binarised_evaluation_is_one_fixed_binarisation(trained, digits):
    b = binarized_validation(digits.val.images, 0)
    assert torch.equal(b, binarized_validation(digits.val.images, 0)) and set(b.unique().tolist()) <= {0, 255}
    assert torch.equal(binarized(digits.val.images), binarized(digits.val.images))
    assert abs(b.float().mean() - digits.val.images.float().mean()) < 5  # E[Bernoulli(p)] = p
    model = trained.load_model()
    on_the_fly = evaluate_model(model, digits.val, has_density=True, nll_samples=20, binarize=True)
    given = evaluate_model(model, ImageSet(b, digits.val.labels, digits.val.class_names), has_density=True,
                           nll_samples=20)
    assert on_the_fly["nll"] == pytest.approx(given["nll"]) and on_the_fly["images"]["binarized"]
    assert "binarised once, as the trainer binarises its validation split" in on_the_fly["units"]["nll"] and "nats per image" in on_the_fly["units"]["nll"]
    assert "not a normalised" not in on_the_fly["units"]["nll"]
    settings = types.SimpleNamespace
    run = settings(data=settings(binarize=True), train=settings(), model=settings())
    assert run_binarizes(run) and not run_binarizes(settings(data=settings(), train=settings(), model=settings()))


def test_the_stop_flag_ends_the_evaluation_between_chunks(trained, digits, monkeypatch):
    import engine.metrics
    monkeypatch.setattr(engine.metrics, "PIXEL_BUDGET", 100 * 64)  # 100 samples of an 8×8 digit per pass
    stop = threading.Event()
    stop.set()
    with pytest.raises(EvaluationStopped):
        evaluate_run(trained, nll_samples=10, dataset=digits, stop=stop)
    seen = []

    def progress(stage, done, total):
        seen.append((stage, done))
        if stage == "nll" and done > 0:
            stop.set()

    stop.clear()
    (trained.path / "metrics.json").unlink(missing_ok=True)
    with pytest.raises(EvaluationStopped):
        evaluate_run(trained, nll_samples=1000, dataset=digits, stop=stop, progress=progress)
    nll_reports = [done for stage, done in seen if stage == "nll"]
    assert nll_reports == [0, 100], "it stopped after the first chunk of 100 samples of one image"
    assert not (trained.path / "metrics.json").exists(), "a stopped evaluation writes nothing"


def test_metrics_json_round_trip(trained, digits):
    m = evaluate_run(trained, nll_samples=20, dataset=digits)
    again = Run.open(trained.path).load_metrics()
    assert again == json.loads(json.dumps(m))
    assert not list(trained.path.glob("*.tmp"))
    path = trained.path / "metrics.json"
    for key, value in (("nll", "many"), ("active_units", 99), ("knn_accuracy", 1.5), ("format", "x")):
        path.write_text(json.dumps({**m, key: value}))
        with pytest.raises(RunError, match="metrics.json is damaged"):
            Run.open(trained.path).load_metrics()
    path.write_text(json.dumps(m).replace(str(m["nll"]), "NaN"))
    with pytest.raises(RunError, match="nll is not a finite number"):
        Run.open(trained.path).load_metrics()
    path.unlink()
    assert Run.open(trained.path).load_metrics() is None


# -- the CLI ---------------------------------------------------------------------------------------
def test_cli_evaluate_json(trained, capsys):
    assert main(["evaluate", str(trained.path), "--nll-samples", "30", "--json"]) == 0
    out, err = capsys.readouterr()
    m = json.loads(out)  # the whole of stdout is one JSON object
    assert {"nll", "elbo", "reconstruction", "active_units", "knn_accuracy", "parameters"} <= set(m)
    assert m["nll_samples"] == 30 and m["weights"] == "latest" and err == ""
    assert Run.open(trained.path).load_metrics()["nll"] == m["nll"]
    assert main(["evaluate", str(trained.path), "--nll-samples", "5", "--best", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "nll " in out and "best weights" in out and "wrote" in out
    assert main(["info", str(trained.path)]) == 0
    assert "active     4 of 4 latent units" in capsys.readouterr().out


def test_cli_train_evaluate_and_a_model_without_density(tmp_path, capsys):
    assert main(["train", "--model", "ae", "--epochs", "1", "--hidden", "32", "--quiet", "--out", str(tmp_path),
                 "--name", "ae", "--evaluate", "--nll-samples", "10"]) == 0
    assert "wrote" in capsys.readouterr().out
    m = Run.open(tmp_path / "ae").load_metrics()
    assert m["nll"] is None and m["epochs"] == 1
    assert main(["evaluate", str(tmp_path / "ae"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nll"] is None


@pytest.mark.parametrize("args,needle", [
    (["evaluate", "/nonexistent/run"], "not a folder"),
    (["evaluate", "RUN", "--nll-samples", "0"], "--nll-samples"),
    (["train", "--evaluate", "--nll-samples", "x"], "--nll-samples"),
])
def test_cli_evaluate_bad_arguments(args, needle, trained, capsys):
    args = [str(trained.path) if a == "RUN" else a for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err


def test_a_conditional_model_is_evaluated_with_its_labels(digits):
    model = Trainer(DIGITS, small_model("cvae", latent_dim=2), quick_train(epochs=1), dataset=digits)
    model.run_to_end()
    m = evaluate_model(model.model, digits.val, digits.train, has_density=True, nll_samples=20)
    assert math.isfinite(m["nll"]) and m["nll"] <= m["neg_elbo"] + 3 * m["nll_std_error"]
    assert "saw each image's label" in m["knn"]["note"]


def test_a_likelihood_without_a_density_gets_no_nll(trained, digits):
    model = trained.load_model()

    def no_density(self, x, y=None, k=1):
        raise ValueError("The 'squared_error' reconstruction term is not a normalised log-density.")

    model.log_densities = types.MethodType(no_density, model)
    m = evaluate_model(model, digits.val, has_density=True, nll_samples=5)
    assert m["nll"] is None and m["elbo"] is None and m["neg_elbo"] is None
    assert any("No NLL or ELBO" in note and "squared_error" in note for note in m["notes"])
    assert m["kl"] is not None and m["reconstruction"]["bce"] > 0  # the rest is still measured


def test_evaluate_binarises_the_validation_split_as_the_trainer_validates(digits, tmp_path):
    """A binarised AE's validation reconstruction term (BCE summed over pixels, per image, from the
    code) and evaluate's reconstruction.bce are the same number only on the same binary images."""
    train = quick_train(epochs=1, binarize=True, seed=3)
    trainer = Trainer(DIGITS, small_model("ae"), train, dataset=digits, run_parent=tmp_path)
    trainer.run_to_end()
    run = Run.open(trainer.run.path)
    m = evaluate_run(run, nll_samples=1, dataset=digits, save=False)
    assert m["images"]["binarized"] and m["images"]["binarize_seed"] == 3
    assert "training seed 3" in m["images"]["binarization"]
    assert m["reconstruction"]["bce"] == pytest.approx(run.history.val["reconstruction"][-1], rel=1e-4)


def test_metrics_of_an_earlier_step_are_marked_stale_and_old_files_without_a_step_are_accepted(trained, digits,
                                                                                              tmp_path):
    run = Run.open(trained.path)
    m = evaluate_run(run, nll_samples=2, dataset=digits, save=False)
    assert m["step"] == run.step and m["checkpoint"] == run.checkpoint
    assert staleness(run, m) is None
    earlier = {**m, "step": 39}
    assert staleness(run, earlier) == f"measured at step 39; the run is at step {run.step}"
    old = {k: v for k, v in m.items() if k not in ("step", "epochs", "checkpoint")}
    assert check_metrics(json.loads(json.dumps(old)), tmp_path / "metrics.json") == old
    assert "not recorded" in staleness(run, old)
    with pytest.raises(RunError, match="step is not a whole number"):
        check_metrics({**m, "step": "39"}, tmp_path / "metrics.json")


def test_the_knn_scores_in_small_distance_chunks(monkeypatch, digits):
    """Fault 8: scikit-learn's default 1 GB of distance chunks made evaluate's peak 2.1 GB on 10,000
    MNIST test images against 60,000 training codes (bench_nll_memory.py)."""
    import sklearn
    from sklearn.neighbors import KNeighborsClassifier

    from engine.metrics import KNN_WORKING_MB
    seen = []
    original = KNeighborsClassifier.score
    monkeypatch.setattr(KNeighborsClassifier, "score",
                        lambda self, *a, **k: (seen.append(sklearn.get_config()["working_memory"]), original(self, *a, **k))[1])
    trainer = Trainer(DIGITS, small_model("ae"), quick_train(epochs=1))
    trainer.run_to_end()
    metrics = evaluate_model(trainer.model, digits.val, digits.train, has_density=False)
    assert seen == [KNN_WORKING_MB] and KNN_WORKING_MB <= 128 and metrics["knn_accuracy"] is not None
