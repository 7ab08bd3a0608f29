"""From an image to its digits as the model sees them: the app's way, in one place.

`python -m feedback add` and the app both cut an image into its digits' crops
(client/preprocess.py) and let the model server's predict_image signature normalise each, so a
stored digit is what the network was given for that image.
"""

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from client import api, preprocess

MAX_SIDE = 1000  # photos are shrunk to this first, as the app does; digits need far fewer pixels


class ImageError(Exception):
    """An image cannot be read or holds no digit; the message is one line."""


def model_view(image: np.ndarray, url: str, model: str) -> list[np.ndarray]:
    """The digits of `image`, left to right, each (28, 28) float32 in 0..1, as the model at `url`
    sees them; [] when no ink. Raises api.ServingError when the server cannot answer."""
    crops = preprocess.digit_crops(image)
    if not crops:
        return []
    answer = api.predict(url, model, [preprocess.encode_png(crop) for crop in crops])
    return list(answer.images)


def read_image(data: bytes, name: str = "the image") -> tuple[np.ndarray, bytes]:
    """An image file's pixels (uint8 RGB or RGBA, upright) and the same image as PNG bytes."""
    try:
        image = Image.open(io.BytesIO(data))
        image = ImageOps.exif_transpose(image)  # phone photos are often stored sideways
        image.thumbnail((MAX_SIDE, MAX_SIDE))
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"{name} is not an image that can be read (PNG or JPEG)") from e
    png = io.BytesIO()
    image.save(png, format="PNG")
    return np.asarray(image), png.getvalue()
