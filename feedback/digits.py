"""From an image to its digits as the model sees them: the app's way, in one place.

`python -m feedback add` and the app both cut an image into its digits' crops
(client/preprocess.py) and let the model server's predict_image signature normalise each, so a
stored digit is what the network was given for that image.
"""

import io

import numpy as np
from PIL import Image

from client import api, preprocess
from client.preprocess import ImageError

__all__ = ["ImageError", "model_view", "read_image"]


def model_view(image: np.ndarray, url: str, model: str) -> list[np.ndarray]:
    """The digits of `image`, left to right, each (28, 28) float32 in 0..1, as the model at `url`
    sees them; [] when no ink. Raises api.ServingError when the server cannot answer."""
    crops = preprocess.digit_crops(image)
    if not crops:
        return []
    answer = api.predict(url, model, [preprocess.encode_png(crop) for crop in crops])
    return list(answer.images)


def read_image(data: bytes, name: str = "the image") -> tuple[np.ndarray, bytes]:
    """An image file's pixels (uint8 RGB or RGBA, upright), as the app reads an upload, and the
    same pixels as PNG bytes, to store."""
    image = preprocess.read_image(data, name)
    png = io.BytesIO()
    Image.fromarray(image).save(png, format="PNG")
    return image, png.getvalue()
