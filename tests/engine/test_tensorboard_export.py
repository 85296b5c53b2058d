"""The TensorBoard export read back with TensorBoard's own loaders: the scalars through its
EventAccumulator, the projector's files through its projector plugin (as a TensorBoard started on
the log folder serves them) and its projector_config proto."""

import io

import numpy as np
import pytest
import werkzeug.test
import werkzeug.wrappers
from PIL import Image

from engine import export
from engine.cli import main
from engine.datasets import load_dataset
from engine.errors import UserError
from engine.runs import Run
from engine.training import Trainer
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    trainer = Trainer(DIGITS, small_model("vae"), quick_train(2), run_parent=tmp_path_factory.mktemp("runs"),
                      run_name="tb-vae")
    trainer.run_to_end()
    return Run.open(trainer.run.path)


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    logdir = tmp_path_factory.mktemp("logs")
    return logdir, export.export_tensorboard(run, logdir)


def accumulator(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def test_the_history_reads_back_as_scalars_under_clear_tags(run, exported):
    _, folder = exported
    acc = accumulator(folder)
    h = run.history
    tags = set(acc.Tags()["scalars"])
    assert tags == ({f"train/{t}" for t in h.terms} | {f"train_epoch/{t}" for t in h.train}
                    | {f"val/{t}" for t in h.val})
    assert {"train/total", "train/reconstruction", "train/kl", "val/total", "val/kl", "train_epoch/neg_elbo"} <= tags
    per_step = acc.Scalars("train/total")
    assert [e.step for e in per_step] == h.steps
    np.testing.assert_allclose([e.value for e in per_step], h.terms["total"], rtol=1e-6)
    val_kl = acc.Scalars("val/kl")
    assert [e.step for e in val_kl] == h.epoch_steps and len(val_kl) == 2
    np.testing.assert_allclose([e.value for e in val_kl], h.val["kl"], rtol=1e-6)
    np.testing.assert_allclose([e.value for e in acc.Scalars("train_epoch/total")], h.train["total"], rtol=1e-6)


def projector(logdir):
    """TensorBoard's projector plugin over the log folder, as `tensorboard --logdir` builds it."""
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.projector.projector_plugin import ProjectorPlugin
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    plugin = ProjectorPlugin(base_plugin.TBContext(logdir=str(logdir), data_provider=provider,
                                                   multiplexer=multiplexer))
    apps = plugin.get_plugin_apps()

    def get(route: str, **query):
        client = werkzeug.test.Client(apps[route], werkzeug.wrappers.Response)
        response = client.get(route, query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_data()

    return get


def test_the_projector_serves_the_codes_labels_and_sprite(run, exported):
    import json
    logdir, folder = exported
    model = run.load_model()
    val = load_dataset(run.data).val
    codes, labels = export.embeddings(model, val)
    get = projector(logdir)
    assert json.loads(get("/runs")) == [run.name]
    config = json.loads(get("/info", run=run.name))
    (embedding,) = config["embeddings"]
    name = embedding["tensorName"]
    served = np.frombuffer(get("/tensor", run=run.name, name=name), dtype=np.float32).reshape(len(val), -1)
    np.testing.assert_allclose(served, codes, rtol=1e-5, atol=1e-6)
    rows = get("/metadata", run=run.name, name=name).decode().splitlines()
    assert rows[0] == "label\tclass\tindex" and len(rows) == len(val) + 1
    for i in (0, 7, len(val) - 1):
        assert rows[i + 1].split("\t") == [str(labels[i]), run.class_names[labels[i]], str(i)]
    sprite = Image.open(io.BytesIO(get("/sprite_image", run=run.name, name=name)))
    side = int(np.ceil(np.sqrt(len(val))))
    assert sprite.size == (side * 8, side * 8)
    assert embedding["sprite"]["singleImageDim"] == [8, 8]
    first = np.asarray(sprite.convert("L"))[:8, :8]
    np.testing.assert_allclose(first, val.images[0, 0].numpy(), atol=1)  # the sprite holds the images


def test_the_projector_config_parses_with_tensorboards_proto(exported):
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
    _, folder = exported
    config = text_format.Parse((folder / "projector_config.pbtxt").read_text(), ProjectorConfig())
    (embedding,) = config.embeddings
    for relative in (embedding.tensor_path, embedding.metadata_path, embedding.sprite.image_path):
        assert (folder / relative).is_file()
    assert [p.name for p in (folder / embedding.tensor_path).parent.iterdir()].count("tensors.tsv") == 1


def test_an_existing_export_is_refused_and_kept(run, exported, capsys):
    logdir, folder = exported
    before = sorted(p.relative_to(logdir) for p in logdir.rglob("*"))
    assert main(["export", "tensorboard", str(run.path), "--out", str(logdir)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert sorted(p.relative_to(logdir) for p in logdir.rglob("*")) == before


def test_the_cli_writes_a_run_folder_under_the_logdir(run, tmp_path, capsys):
    logdir = tmp_path / "new" / "logs"
    assert main(["export", "tensorboard", str(run.path), "--out", str(logdir)]) == 0
    assert f"wrote {logdir / run.name}" in capsys.readouterr().out
    assert [p.name for p in logdir.iterdir()] == [run.name]  # no temporary folder left
    assert "val/total" in accumulator(logdir / run.name).Tags()["scalars"]


def test_a_failed_export_leaves_nothing(run, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise UserError("The images could not be read.")
    monkeypatch.setattr(export, "embeddings", broken)
    with pytest.raises(UserError):
        export.export_tensorboard(run, tmp_path)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        export.export_tensorboard(run, tmp_path / "file")


def test_the_embedding_is_capped_and_non_finite_losses_left_out(run, tmp_path):
    from engine.history import History
    history = History()
    history.add_steps([1, 2, 3], {"total": np.array([1.0, np.nan, 3.0])})
    assert export.history_scalars(history) == {"train/total": [(1, 1.0), (3, 3.0)]}
    folder = export.export_tensorboard(run, tmp_path, max_images=50)
    rows = (next(folder.rglob("metadata.tsv"))).read_text().splitlines()
    assert len(rows) == 51
