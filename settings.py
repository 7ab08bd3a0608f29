"""The product's shared facts (model name, ports, paths), read from the repository's `.env`.

docker compose reads the same file, so the deployment, the local server and the client agree.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


_ENV = _read_env(ROOT / ".env")

MODEL_NAME: str = _ENV["MODEL_NAME"]
REST_API_PORT: int = int(_ENV["REST_API_PORT"])
GRPC_PORT: int = int(_ENV["GRPC_PORT"])
CLIENT_PORT: int = int(_ENV["CLIENT_PORT"])
# Where versions are written and served from: models/mnist/<version>/ (relative to the repo root).
MODEL_BASE_PATH: Path = ROOT / _ENV["MODELS_DIR"] / MODEL_NAME
# The local server's address, which is also the client's default TF_SERVING_URL.
DEFAULT_SERVING_URL: str = f"http://localhost:{REST_API_PORT}"


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

# The signature that takes encoded images (PNG, JPEG, GIF, BMP) and normalises them in the model's
# graph, beside serving_default's 28x28 digits: export/saved_model.py writes it, the client asks it.
IMAGE_SIGNATURE_NAME: str = "predict_image"
