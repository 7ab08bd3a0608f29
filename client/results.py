"""Reading the model's answer: the digits, how sure it is, the runners-up, and what is no digit."""

from dataclasses import dataclass

import numpy as np

import settings

# Below this top probability the page says "not sure" next to the digit. Chosen from the dev sets
# with the default model (`python -m bench.accuracy_bench`; its figures, wrong and right answers
# flagged at each threshold, are in bench/RESULTS.md): lower thresholds leave most wrong answers
# unflagged, higher ones flag too many right ones.
NOT_SURE_BELOW = 0.9
# What the page says, in place of the digit, when a drawing's one piece is not a digit.
NOT_A_DIGIT_MESSAGE = "That doesn't look like a digit"


@dataclass
class Reading:
    """What a drawing's pieces read as, left to right."""

    number: str  # each accepted piece's digit, settings.NOT_A_DIGIT_MARK for each other piece
    guesses: list[int]  # each piece's likeliest digit, whether the model takes it for one or not
    confidences: list[float]  # each piece's top probability; 0 where the model found no ink
    accepted: list[bool]  # whether the model takes the piece for a digit at all

    @property
    def no_digit(self) -> bool:
        """One piece, and not a digit: the page says so instead of a number."""
        return len(self.accepted) == 1 and not self.accepted[0]

    @property
    def least_sure(self) -> float:
        """The lowest top probability of the accepted digits (1 when there are none)."""
        return min(
            (p for p, ok in zip(self.confidences, self.accepted, strict=True) if ok), default=1
        )

    @property
    def sure(self) -> bool:
        """A number is only as sure as its least sure digit; a piece that is no digit is not
        counted, the page marks it itself."""
        return self.least_sure >= NOT_SURE_BELOW


def top_k(probabilities: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
    """The k likeliest digits of one row of probabilities, likeliest first."""
    order = np.argsort(probabilities)[::-1][:k]
    return [(int(d), float(probabilities[d])) for d in order]


def accepted(probabilities: np.ndarray, is_digit: np.ndarray | None = None) -> np.ndarray:
    """Which pieces are digits: those the version takes for one (all, for a version that does not
    say) in which it found ink (a row of zeros is no ink)."""
    found = probabilities.max(axis=1) > 0
    return found if is_digit is None else found & np.asarray(is_digit, bool)


def read(probabilities: np.ndarray, is_digit: np.ndarray | None = None) -> Reading:
    """The number the rows spell left to right, each piece's best guess and its probability."""
    guesses = [int(d) for d in probabilities.argmax(axis=1)]
    confidences = [float(row[d]) for row, d in zip(probabilities, guesses, strict=True)]
    taken = accepted(probabilities, is_digit).tolist()
    number = "".join(
        str(d) if ok else settings.NOT_A_DIGIT_MARK for d, ok in zip(guesses, taken, strict=True)
    )
    return Reading(number, guesses, confidences, taken)


def classes(probabilities: np.ndarray, is_digit: np.ndarray | None = None) -> np.ndarray:
    """Each piece's class as the feedback store labels it: its digit, or settings.NOT_A_DIGIT."""
    digits = probabilities.argmax(axis=1)
    return np.where(accepted(probabilities, is_digit), digits, settings.NOT_A_DIGIT)


def headline(reading: Reading) -> str:
    """What the page shows largest: the number, or that the one piece is no digit."""
    return NOT_A_DIGIT_MESSAGE if reading.no_digit else f"Prediction: {reading.number}"


def best_guess(reading: Reading, piece: int) -> str | None:
    """For a piece that is no digit, the digit the model would read in it ("best guess: 4, 97%");
    None for a digit, and where the model found no ink."""
    if reading.accepted[piece] or reading.confidences[piece] <= 0:
        return None
    return f"best guess: {reading.guesses[piece]}, {reading.confidences[piece]:.0%}"


def detail(reading: Reading, piece: int) -> str:
    """What the page says beside each piece of a number: a digit's probability, or for a piece
    that is no digit the model's best guess."""
    if reading.accepted[piece]:
        return f"{reading.confidences[piece]:.0%}"
    return best_guess(reading, piece) or "no ink found"
