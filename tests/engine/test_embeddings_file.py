"""Embeddings files read for a map without a run (engine/embeddings_file.py): the .npz and .csv
that ``export embeddings`` writes load back; a bad file is one sentence naming it."""

import numpy as np
import pytest

from engine.embeddings_file import load_embeddings
from engine.errors import UserError
from engine.export import save_embeddings


def test_what_export_embeddings_writes_loads_back(tmp_path):
    rng = np.random.default_rng(0)
    codes, labels = rng.normal(size=(50, 3)).astype(np.float32), rng.integers(0, 4, 50)
    for name in ("e.npz", "e.csv"):
        path = save_embeddings(codes, labels, tmp_path / name, ["a", "b", "c", "d"], xy=codes[:, :2],
                               splits=np.zeros(50, np.int8), split_indices=np.arange(50))
        emb = load_embeddings(path)
        np.testing.assert_allclose(emb.codes, codes, rtol=1e-5)
        assert emb.labels.tolist() == labels.tolist() and emb.has_labels
    assert load_embeddings(tmp_path / "e.npz").label_name(2) == "c"


def test_codes_without_labels_and_a_lone_array_load(tmp_path):
    np.savez(tmp_path / "z.npz", z=np.ones((4, 2)))
    emb = load_embeddings(tmp_path / "z.npz")
    assert emb.codes.shape == (4, 2) and not emb.has_labels and emb.label_name(-1) == "no label"
    (tmp_path / "z.csv").write_text("id,z1,z0\n7,1.5,2.5\n8,3,4\n")
    emb = load_embeddings(tmp_path / "z.csv")
    assert emb.codes.tolist() == [[2.5, 1.5], [4.0, 3.0]] and not emb.has_labels


@pytest.mark.parametrize("name,content,needle", [
    ("a.txt", b"1,2", "open an .npz or a .csv"),
    ("a.npz", b"not a zip at all", "is not a NumPy .npz file"),
    ("a.csv", b"x,y\n1,2\n", "no columns named z0"),
    ("a.csv", b"z0,z2\n1,2\n", "gaps"),
    ("a.csv", b"z0,z1,label\n1,2,3\n1,oops,3\n", "not numbers"),
    ("a.csv", b"z0,label\n1,0.5\n", "whole numbers"),
    ("a.csv", b"z0,z1\n", "no points"),
    ("a.csv", b"z0,z1\n1,nan\n", "NaN"),
])
def test_a_bad_file_is_one_sentence_naming_it(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError) as err:
        load_embeddings(path)
    message = str(err.value)
    assert needle in message and "\n" not in message and name in message


@pytest.mark.parametrize("arrays,needle", [
    ({"codes": np.zeros(5)}, "not a table"),
    ({"codes": np.zeros((3, 2)), "labels": np.zeros(2)}, "2 labels for 3 codes"),
    ({"codes": np.zeros((3, 2)), "labels": np.array([0, -1, 2])}, "whole numbers of 0 or more"),
    ({"a": np.zeros((3, 2)), "b": np.zeros((3, 2))}, "no array named codes"),
    ({"codes": np.array([["a", "b"]])}, "not real numbers"),
])
def test_a_bad_npz_is_one_sentence(tmp_path, arrays, needle):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UserError, match=needle):
        load_embeddings(tmp_path / "bad.npz")


def test_nothing_is_unpickled(tmp_path):
    np.savez(tmp_path / "obj.npz", codes=np.array([{"x": 1}], dtype=object))
    with pytest.raises(UserError, match="unpickling"):
        load_embeddings(tmp_path / "obj.npz")
    with pytest.raises(UserError, match="does not exist"):
        load_embeddings(tmp_path / "gone.npz")
