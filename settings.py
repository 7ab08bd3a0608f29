"""The product's shared facts (model name, ports, paths), read from the repository's `.env`.

docker compose reads the same file, so the deployment, the local server and the client agree.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def read_env(path: Path = ROOT / ".env") -> dict[str, str]:
    """The KEY=VALUE lines of a .env file (the repository's by default): blank lines and lines
    starting with # skipped, spaces around key and value dropped, everything after the first =
    the value. The one reader of .env in Python (docker compose and make read it themselves)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


_ENV = read_env()

MODEL_NAME: str = _ENV["MODEL_NAME"]
REST_API_PORT: int = int(_ENV["REST_API_PORT"])
GRPC_PORT: int = int(_ENV["GRPC_PORT"])
CLIENT_PORT: int = int(_ENV["CLIENT_PORT"])
# Where versions are written and served from: models/mnist/<version>/ (relative to the repo root).
MODEL_BASE_PATH: Path = ROOT / _ENV["MODELS_DIR"] / MODEL_NAME
# `make run`'s background training writes its progress here (train/progress.py), which the app
# shows; its TensorFlow and server output goes to the log beside it.
TRAINING_PROGRESS: Path = MODEL_BASE_PATH.parent / "training.json"
RUN_LOG: Path = MODEL_BASE_PATH.parent / "make-run.log"
# The local server's address, which is also the client's default TF_SERVING_URL.
DEFAULT_SERVING_URL: str = f"http://localhost:{REST_API_PORT}"


def feedback_db() -> str:
    """Where people's corrections are kept: FEEDBACK_DB from the environment (a path or a
    SQLAlchemy URL), else .env's, whose relative path is taken from the repo root."""
    if value := os.environ.get("FEEDBACK_DB"):
        return value
    value = _ENV["FEEDBACK_DB"]
    return value if "://" in value else str(ROOT / value)


def mnist_dir() -> Path | None:
    """MNIST_DIR from the environment: a folder of the four MNIST IDX files, to train offline."""
    value = os.environ.get("MNIST_DIR")
    return Path(value).expanduser() if value else None


# The browser that the browser tests and bench/client_bench.py drive: Debian's Chromium (never a
# downloaded one), with the flags this machine needs (no sandbox or GPU, no background traffic).
CHROMIUM: str = "/usr/bin/chromium"
CHROMIUM_ARGS: list[str] = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The app's drawing canvas, pixels a side: what the browser sends, what the dev sets
# (tests/devsets.py) and the UJI strokes (train/uji.py) are drawn on, and what the warmup's images
# are enlarged to (export/saved_model.py).
CANVAS_SIZE: int = 280

# The model's signatures (export/saved_model.py writes them). SIGNATURE_NAME takes 28x28 digits:
# TF Serving's default signature key, the one a request that names none gets (our server's too).
# IMAGE_SIGNATURE_NAME takes encoded images (PNG, JPEG, GIF, BMP) and normalises them in the
# model's graph; the client asks it.
SIGNATURE_NAME: str = "serving_default"
IMAGE_SIGNATURE_NAME: str = "predict_image"

# Larger images are refused before decoding, which alone would take gigabytes of memory: a small
# compressed file can hold a huge image. More than any phone camera's photo. The model's graph
# (export/image_preprocessing.py) and the app's upload (client/preprocess.py) both refuse them.
MAX_PIXELS: int = 50_000_000
# The longest side the model's graph works on: it shrinks a larger image to this first, since a
# digit needs far fewer pixels and its work grows with the area. The app shrinks uploads further,
# by its crop margin, so that the graph never shrinks a crop the app sends (client/preprocess.py).
MAX_SIDE: int = 1024

# MNIST's four IDX file names, which `python -m train --data idx:DIR` reads (train/data.py; each
# may also be gzipped) and the feedback store exports (feedback/idx.py).
IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# What counts as ink: the client finds it to cut a drawing into digits, and the model's graph
# (export/image_preprocessing.py) finds it again in each digit's crop, so both read these.
# Ink is what stands out from the background by more than MIN_CONTRAST (0..255): paper grain,
# JPEG noise and faint shadows stay below it. A border varying more than UNEVEN_BORDER (0..255)
# is a photo's uneven lighting, not a clean canvas, if the image has more than MIN_PHOTO_PIXELS
# (on a small clean canvas a bold digit could pass for background); the lighting is then the
# median over SMOOTH_WINDOW cells of the image on a SMOOTH_GRID grid, wider than strokes, so that
# ink is the minority. With ink normalised to 0..1, strokes are what reaches INK_LEVEL; under half
# of it is background noise, and between the two is kept as anti-aliasing next to strokes.
MIN_CONTRAST: int = 40
UNEVEN_BORDER: int = 10
MIN_PHOTO_PIXELS: int = 1024
SMOOTH_GRID, SMOOTH_WINDOW = 32, 9
INK_LEVEL: float = 0.25

# Every version also says whether each image is a digit at all (export/saved_model.py's outputs
# `is_digit` and `digit_score`); the model learns "not a digit" as one more class, this one, after
# the ten digits (train/nondigits.py). People mark such a drawing, or one piece of a number, with
# NOT_A_DIGIT_MARK where a digit would be; the feedback store keeps it as this class.
NOT_A_DIGIT: int = 10
NOT_A_DIGIT_MARK: str = "?"
