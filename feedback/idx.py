"""Stored digits as MNIST's IDX files, which `python -m train --data idx:DIR` reads.

The drawings held aside (feedback/split.py) are the test files, the others the training files.
"""

import io
import zipfile
from pathlib import Path

import numpy as np

from feedback.split import held_aside_mask
from feedback.store import Digits
from settings import IDX_FILES


def idx_bytes(array: np.ndarray) -> bytes:
    """An array of unsigned bytes as an IDX file: magic 0x0000 08 <ndim>, big-endian sizes."""
    array = np.ascontiguousarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def idx_files(found: Digits) -> dict[str, bytes]:
    """File name -> contents of the four files."""
    aside = held_aside_mask(found.drawing_ids)
    out = {}
    for split, keep in {"train": ~aside, "test": aside}.items():
        out[IDX_FILES[f"{split}_images"]] = idx_bytes(found.images[keep].reshape(-1, 28, 28))
        out[IDX_FILES[f"{split}_labels"]] = idx_bytes(found.labels[keep].astype(np.uint8))
    return out


def write_idx(found: Digits, folder: Path) -> list[Path]:
    """Write the four files into `folder` (made if missing); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    files = idx_files(found)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in files]


def idx_zip(found: Digits) -> bytes:
    """The four files in one zip, for a download."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in idx_files(found).items():
            archive.writestr(name, data)
    return buffer.getvalue()
