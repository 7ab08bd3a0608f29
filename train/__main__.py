"""`python -m train`: train a model on MNIST and export it as a new numbered version.

python -m train --data idx:$MNIST_DIR   # offline, from the four MNIST IDX files
python -m train                         # MNIST from tensorflow-datasets (downloads it)
python -m train --data sample --limit 500 --epochs 1
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's INFO lines bury the progress bar

from export.versions import VersionError  # noqa: E402
from train.config import TrainConfig, add_arguments  # noqa: E402
from train.data import DataError  # noqa: E402
from train.run import run  # noqa: E402


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return TrainConfig(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        run(config)
    except (DataError, VersionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no version was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
