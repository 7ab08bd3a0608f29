"""Reading the model's answer: the digits, how sure it is, the runners-up."""

import numpy as np

# Below this top probability the page says "not sure" next to the digit. Chosen from the dev sets
# with the default model (`python -m bench.accuracy_bench`; its figures, wrong and right answers
# flagged at each threshold, are in bench/RESULTS.md): lower thresholds leave most wrong answers
# unflagged, higher ones flag too many right ones.
NOT_SURE_BELOW = 0.9


def top_k(probabilities: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
    """The k likeliest digits of one row of probabilities, likeliest first."""
    order = np.argsort(probabilities)[::-1][:k]
    return [(int(d), float(probabilities[d])) for d in order]


def read_number(probabilities: np.ndarray) -> tuple[str, list[float]]:
    """The number the rows spell left to right, and each digit's probability. A row of zeros is
    the model finding no digit in its image: "?", with probability 0."""
    digits = probabilities.argmax(axis=1)
    confidences = [float(row[d]) for row, d in zip(probabilities, digits, strict=True)]
    text = "".join(str(int(d)) if p > 0 else "?" for d, p in zip(digits, confidences, strict=True))
    return text, confidences


def is_sure(confidences: list[float]) -> bool:
    """A number is only as sure as its least sure digit."""
    return min(confidences) >= NOT_SURE_BELOW
