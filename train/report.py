"""Evaluation on the test split and the pictures a person looks at after training.

Figures are drawn with matplotlib's object API (Figure + savefig), which needs no GUI backend.
"""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from train.data import NUM_CLASSES

CONFUSION_PNG = "confusion_matrix.png"
MISCLASSIFIED_PNG = "misclassified.png"
CURVES_PNG = "training_curves.png"


def evaluate(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Test accuracy, per-class accuracy (recall), confusion matrix (rows true, cols predicted)."""
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "test_accuracy": float((predicted == labels).mean()),
        "per_class_accuracy": {str(d): round(float(a), 4) for d, a in enumerate(per_class)},
        "confusion_matrix": confusion.tolist(),
    }


def plot_confusion(
    confusion: np.ndarray | list, path: Path, title: str = "Confusion matrix (test set)"
) -> None:
    confusion = np.asarray(confusion)
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    # Log colour scale: otherwise the diagonal drowns the few mistakes one wants to see.
    im = ax.imshow(np.log1p(confusion), cmap="Blues")
    for (i, j), n in np.ndenumerate(confusion):
        if n:
            light = np.log1p(n) > np.log1p(confusion.max()) / 2
            colour = "white" if light else "black"
            ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color=colour)
    ticks = range(NUM_CLASSES)
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    fig.savefig(path, dpi=100, bbox_inches="tight")


def plot_misclassified(
    images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, path: Path
) -> None:
    """A gallery of the 40 most confidently wrong test digits."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:40]
    cols = 10
    rows = max(1, -(-len(wrong) // cols))
    fig = Figure(figsize=(cols * 1.1, rows * 1.35 + 0.5))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, wrong, strict=False):
        ax.imshow(images[i].reshape(28, 28), cmap="gray")
        p = probabilities[i, predicted[i]]
        ax.set_title(f"true {labels[i]}\npred {predicted[i]} {p:.0%}", fontsize=8, color="red")
    total = int((predicted != labels).sum())
    fig.suptitle(f"Misclassified test digits: {total} of {len(labels)} (most confident first)")
    fig.savefig(path, dpi=100, bbox_inches="tight")


def plot_history(history: dict[str, list[float]], path: Path) -> None:
    """Loss, accuracy and learning rate per epoch, training vs validation."""
    fig = Figure(figsize=(12, 3.8))
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    epochs = range(1, len(history.get("loss", [])) + 1)
    for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        for prefix, label in (("", "train"), ("val_", "validation")):
            if prefix + key in history:
                ax.plot(epochs, history[prefix + key], marker="o", label=label)
        ax.set(xlabel="epoch", title=key)
        ax.legend()
        ax.grid(alpha=0.3)
    if "learning_rate" in history:
        ax_lr.plot(epochs, history["learning_rate"], marker="o")
        ax_lr.set_yscale("log")
    ax_lr.set(xlabel="epoch", title="learning rate")
    ax_lr.grid(alpha=0.3)
    fig.savefig(path, dpi=100, bbox_inches="tight")
