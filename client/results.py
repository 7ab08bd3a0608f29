"""Reading the model's answer: the digits, how sure it is, the runners-up."""

import numpy as np

# Below this top probability the page says "not sure" next to the digit. 0.6 is a first guess:
# a softmax that gives the runner-up 40% or more is a coin toss a person should know about.
# Tune it from dev-set measurements (accuracy of the answers above vs below it), here only.
NOT_SURE_BELOW = 0.6


def top_k(probabilities: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
    """The k likeliest digits of one row of probabilities, likeliest first."""
    order = np.argsort(probabilities)[::-1][:k]
    return [(int(d), float(probabilities[d])) for d in order]


def read_number(probabilities: np.ndarray) -> tuple[str, list[float]]:
    """The number the rows spell left to right, and each digit's probability."""
    digits = probabilities.argmax(axis=1)
    confidences = [float(row[d]) for row, d in zip(probabilities, digits, strict=True)]
    return "".join(str(int(d)) for d in digits), confidences


def is_sure(confidences: list[float]) -> bool:
    """A number is only as sure as its least sure digit."""
    return min(confidences) >= NOT_SURE_BELOW
