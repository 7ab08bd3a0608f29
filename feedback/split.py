"""Which stored drawings are held aside as the "your drawings" test set, never trained on.

Decided by the drawing's id alone, through a hash: the same drawings stay aside in every later
run and export, whatever was added or deleted meanwhile, and the share does not depend on the
order in which drawings came (a plain `id % 5` would, for a bulk import sorted by digit).
"""

import hashlib

import numpy as np

HELD_ASIDE_PERCENT = 20


def held_aside(drawing_id: int) -> bool:
    digest = hashlib.sha256(f"drawing {int(drawing_id)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELD_ASIDE_PERCENT


def held_aside_mask(drawing_ids: np.ndarray) -> np.ndarray:
    return np.array([held_aside(i) for i in np.asarray(drawing_ids).tolist()], bool)
