"""What a version's answer means: is it a digit at all, and how sure is it of which.

A model with the not-a-digit class (train/nondigits.py) outputs 11 probabilities. Its answer, as
export/saved_model.py computes it in the graph and `answer()` here in numpy:

- `digit_score` = 1 - p(not a digit): higher is more digit-like; `is_digit` = score >= threshold;
- `probabilities` = the ten digits' probabilities, renormalised and tempered: softmax(log p / T).

The threshold and the temperature T are chosen when the version is trained (`choose`), on real
digits it did not learn from: scikit-learn's digits (the half `sklearn_part` picks; the other half
stays a dev set) and the UJI writers of a fold kept out, if any. A model without the class (the
reference recipe, a fine-tune of an older version) gets threshold 0: every image is a digit.
"""

from dataclasses import dataclass

import numpy as np

from export.saved_model import TINY  # the graph's log(0) guard
from settings import NOT_A_DIGIT

# At most this share of real digits, and of the validation digits, may be refused.
REAL_REJECTED, VALIDATION_REJECTED = 0.01, 0.003
TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(4.0), 97))  # the search grid
ECE_BINS = 15


def sklearn_part(index: int) -> bool:
    """scikit-learn's digits with even index choose the threshold and temperature."""
    return index % 2 == 0


@dataclass(frozen=True)
class Rule:
    threshold: float = 0.0  # digit_score below it: not a digit
    temperature: float = 1.0


def scores(p: np.ndarray) -> np.ndarray:
    """digit_score of each row of the network's probabilities (10 or 11 columns)."""
    if p.shape[1] <= NOT_A_DIGIT:
        return np.ones(len(p), np.float32)
    return (1.0 - p[:, NOT_A_DIGIT]).astype(np.float32)


def digit_probabilities(p: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """The ten digits' probabilities of each row, renormalised, tempered by `temperature`."""
    logits = np.log(np.maximum(p[:, :NOT_A_DIGIT], TINY)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def answer(p: np.ndarray, rule: Rule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probabilities, digit_score, is_digit), as the exported signatures give them."""
    score = scores(p)
    return digit_probabilities(p, rule.temperature), score, score >= rule.threshold


def calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top probability: in equal-width bins of it, how far
    the share right is from the mean top probability, weighted by the bin's share of rows."""
    top, right = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    which = np.minimum((top * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        rows = which == b
        if rows.any():
            error += rows.mean() * abs(right[rows].mean() - top[rows].mean())
    return float(error)


def fit_temperature(p: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that gives the real digits' labels the highest likelihood."""

    def loss(t: float) -> float:
        q = digit_probabilities(p, t)
        return -float(np.log(np.maximum(q[np.arange(len(labels)), labels], TINY)).mean())

    return float(min(TEMPERATURES, key=loss))


def choose(real_p: np.ndarray, real_labels: np.ndarray, validation_p: np.ndarray) -> Rule:
    """The rule of a version: the highest threshold that refuses at most REAL_REJECTED of the
    real digits and VALIDATION_REJECTED of the validation digits, and the fitted temperature."""
    threshold = 0.0
    if real_p.shape[1] > NOT_A_DIGIT:
        real, val = np.sort(scores(real_p)), np.sort(scores(validation_p))
        # Refusing score < the k-th lowest refuses at most k (fewer on ties).
        threshold = float(
            min(real[int(REAL_REJECTED * len(real))], val[int(VALIDATION_REJECTED * len(val))])
        )
    return Rule(threshold, fit_temperature(real_p, real_labels))


def figures(p: np.ndarray, labels: np.ndarray, rule: Rule) -> dict:
    """How the rule does on digits: the share refused, accuracy on the rest, and the
    calibration error of the top probability before and after the temperature."""
    probabilities, _, accepted = answer(p, rule)
    right = probabilities.argmax(axis=1) == labels
    return {
        "digits": int(len(labels)),
        "rejected": float(1 - accepted.mean()),
        "accuracy_accepted": float(right[accepted].mean()) if accepted.any() else 0.0,
        "ece_untempered": calibration_error(digit_probabilities(p), labels),
        "ece": calibration_error(probabilities, labels),
    }
