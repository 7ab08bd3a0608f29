"""People's corrections (the feedback store) as training data: `python -m train --feedback`.

The drawings held aside (feedback/split.py, fixed by id) are never trained on: they are the "your
drawings" test set, measured before and after. The others are repeated so that they make up a
set share of the training images: a few hundred among tens of thousands of MNIST digits would
otherwise be a sliver of what the model sees, and change little.
"""

from dataclasses import dataclass, replace

import numpy as np

from feedback.split import held_aside_mask
from feedback.store import StoreError, open_store
from settings import NOT_A_DIGIT
from train import data
from train.data import DataError


@dataclass
class Corrections:
    where: str  # the store, as it may be printed
    drawings: int
    x_train: np.ndarray  # uint8 (n, 28, 28), like every other source
    y_train: np.ndarray
    x_aside: np.ndarray
    y_aside: np.ndarray
    aside_drawings: int


def digits_only(corrections: Corrections) -> Corrections:
    """The corrections without those marked "not a digit", for a model that cannot learn them."""
    train, aside = corrections.y_train < NOT_A_DIGIT, corrections.y_aside < NOT_A_DIGIT
    return replace(
        corrections,
        x_train=corrections.x_train[train],
        y_train=corrections.y_train[train],
        x_aside=corrections.x_aside[aside],
        y_aside=corrections.y_aside[aside],
    )


def load(location: str) -> Corrections:
    """The store's digits, split into those to train on and those held aside."""
    try:
        store = open_store(location)
        try:
            found = store.digits()
        finally:
            store.close()
    except StoreError as e:
        raise DataError(str(e)) from e
    if not len(found.labels):
        raise DataError(
            f"the feedback store {store.where} holds no drawings yet: correct some in the app, "
            "or add scans with python -m client add"
        )
    aside = held_aside_mask(found.drawing_ids)
    return Corrections(
        where=store.where,
        drawings=len(np.unique(found.drawing_ids)),
        x_train=found.images[~aside],
        y_train=found.labels[~aside],
        x_aside=found.images[aside],
        y_aside=found.labels[aside],
        aside_drawings=len(np.unique(found.drawing_ids[aside])),
    )


def mix(
    x: np.ndarray, y: np.ndarray, corrections: Corrections, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """The training images with the corrections repeated in, shuffled (the first images are also
    what batch norm is recalibrated on); and the number of repeats."""
    # Repeated to make up about `share` of the images, each at least once.
    n = len(corrections.y_train)
    repeats = max(1, round(share * len(y) / ((1 - share) * n))) if n else 0
    x = np.concatenate([x, np.tile(corrections.x_train, (repeats, 1, 1))])
    y = np.concatenate([y, np.tile(corrections.y_train, repeats)])
    order = np.random.default_rng(seed).permutation(len(y))
    return x[order], y[order], repeats


def figures(
    corrections: Corrections,
    before,  # finetune.Start | None: the version to compare with
    model,
    repeats: int,
    share: float,
    mnist: data.Dataset,
    mnist_test_after: float,
) -> dict:
    """metrics.json's "feedback": what was used, and the held-aside drawings and `mnist`'s test
    split before (with the version `before`) and after."""
    from train.finetune import version_accuracy

    def accuracy_before(x: np.ndarray, y: np.ndarray) -> float | None:
        return version_accuracy(before.path, x, y) if before else None

    after = None
    if len(corrections.y_aside):
        x = data.to_model_input(corrections.x_aside).numpy()
        # The digit the version answers: the likeliest of the ten, as its `digit` output.
        digits = model.predict(x, batch_size=512, verbose=0)[:, :NOT_A_DIGIT].argmax(axis=1)
        after = float(np.mean(digits == corrections.y_aside))
    return {
        "store": corrections.where,
        "drawings": corrections.drawings,
        "digits_trained_on": len(corrections.y_train),
        "repeats": repeats,
        "share": share,
        "held_aside_drawings": corrections.aside_drawings,
        "held_aside_digits": len(corrections.y_aside),
        "before_version": before.version if before else None,
        "held_aside_accuracy_before": accuracy_before(corrections.x_aside, corrections.y_aside),
        "held_aside_accuracy_after": after,
        "mnist_test_accuracy_before": accuracy_before(mnist.x_test, mnist.y_test),
        "mnist_test_accuracy_after": mnist_test_after,
    }


def summary(found: dict) -> str:
    """One line for the console: the held-aside drawings and MNIST test, before and after."""

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.2%}"

    line = (
        f"your drawings: trained on {found['digits_trained_on']} digits (each {found['repeats']}x)"
    )
    if not found["held_aside_digits"]:
        return line + "; none held aside yet to measure on (about 1 drawing in 5 will be)"
    before = found["before_version"]
    line += (
        f"; on the {found['held_aside_digits']} held aside: "
        + (f"{pct(found['held_aside_accuracy_before'])} with version {before}, " if before else "")
        + f"{pct(found['held_aside_accuracy_after'])} now"
    )
    if found["mnist_test_accuracy_before"] is not None:
        line += (
            f"; MNIST test {pct(found['mnist_test_accuracy_before'])} -> "
            f"{pct(found['mnist_test_accuracy_after'])}"
        )
    return line
