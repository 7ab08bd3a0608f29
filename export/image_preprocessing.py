"""Encoded image bytes -> the 28x28 digit the network reads, as TensorFlow ops in the model's graph.

The `predict_image` signature runs this, so whoever calls TF Serving (curl, a phone, a batch job)
gets what the app gets, and a new version may change it without any client noticing. It does what
the client used to do in Python (tests/image_reference.py, which it is tested against):

1. decode PNG, JPEG, GIF (first frame) or BMP (and WebP, JPEG XL: whatever TensorFlow's
   DecodeImage reads); shrink anything larger than MAX_SIDE;
2. find the ink: alpha where the background is transparent, else grey levels; the border's median
   is the background (light paper: invert); on photos, remove the lighting's slow variation;
3. MNIST's normalisation: crop to the ink, even the stroke width out, fit the longer side to
   20 pixels with area resampling, put the centre of mass at the centre of a 28x28 field.

All the ink is one digit: cutting a number into digits, and dropping stray dots, is the caller's
part (client/preprocess.py). Only core TensorFlow ops, so stock tensorflow/serving runs it
(tests/test_image_signature.py lists the exported graph's ops).
"""

import math

import numpy as np
import tensorflow as tf

# The ink the client cuts into digits is the ink this graph finds: the same thresholds.
from settings import (
    INK_LEVEL,
    MAX_PIXELS,
    MAX_SIDE,
    MIN_CONTRAST,
    MIN_PHOTO_PIXELS,
    SMOOTH_GRID,
    SMOOTH_WINDOW,
    UNEVEN_BORDER,
)

MNIST_SIZE = 28
DIGIT_BOX = 20
# Stroke width relative to the digit's size (the larger side of its box), bounds around what
# MNIST's digits measure (bench/RESULTS.md); outside them a stroke is thickened or thinned
# towards the target.
THIN_STROKE, THICK_STROKE, TARGET_STROKE = 0.06, 0.3, 0.15
# The centre of mass is rounded to 1/COM_STEPS of a pixel before the shift is: a symmetric digit
# (a straight 1) has it exactly between two pixels, and which way it then goes must not depend on
# the order in which the sums were added up (the Python reference adds them up differently).
COM_STEPS = 1e6
# Below this side (pixels) a crop is too small for its stroke width to mean anything.
MIN_EVEN_SIDE = 8

# The 8 neighbours of a pixel, counter-clockwise from east, as (dy, dx).
_RING = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))
# OpenCV's arcLength sums float32 square roots.
_DIAGONAL = float(np.float32(math.sqrt(2)))


def _contour_table() -> np.ndarray:
    """Contour length through a foreground pixel, by the pattern of its 8 neighbours (bit k set:
    neighbour k is foreground), as OpenCV's findContours + arcLength measure it.

    A border-following contour passes through a pixel once for each run of background around it
    (a run of one diagonal pixel between two foreground 4-neighbours is no passage: the contour
    cuts that corner). Each passage enters from the foreground pixel before the run and leaves to
    the one after it; half of each step is counted here, the other half at the other end. Summed
    over all pixels this equals the total length of all contours, holes included.
    """
    table = np.zeros(256)
    for code in range(1, 255):
        ink = [(code >> k) & 1 for k in range(8)]
        start = ink.index(1)
        run: list[int] = []
        for step in range(1, 9):
            k = (start + step) % 8
            if not ink[k]:
                run.append(k)
                continue
            if run and any(r % 2 == 0 for r in run):  # even k: a 4-neighbour
                before, after = (run[0] - 1) % 8, k
                table[code] += sum(1.0 if n % 2 == 0 else _DIAGONAL for n in (before, after)) / 2
            run = []
    return table


CONTOUR_TABLE = _contour_table()


def pixel_count(image_bytes: tf.Tensor) -> tf.Tensor:
    """Width times height as the image's header gives them (PNG, GIF, BMP, JPEG, WebP), before
    any decoding; -1 for an image the decoder reads but whose size is not read here (JPEG XL, a
    WebP of another kind), which is refused; 0 for bytes no decoder knows (the decoder then
    says what it makes of them)."""
    # The first 32 bytes, zeros after the end of a short file.
    head = tf.strings.join([tf.strings.substr(image_bytes, 0, 32), b"\0" * 32])
    head = tf.cast(tf.io.decode_raw(head, tf.uint8)[:32], tf.int64)

    def number(offset: int, size: int, big_endian: bool) -> tf.Tensor:
        weights = [256 ** (size - 1 - i if big_endian else i) for i in range(size)]
        return tf.reduce_sum(head[offset : offset + size] * tf.constant(weights, tf.int64))

    def area(offset: int, size: int, big_endian: bool) -> tf.Tensor:
        width = number(offset, size, big_endian)
        height = number(offset + size, size, big_endian)
        if size == 4 and not big_endian:  # BMP: signed; a negative height is a top-down image
            width = tf.where(width >= 2**31, 2**32 - width, width)
            height = tf.where(height >= 2**31, 2**32 - height, height)
        return width * height

    def jpeg() -> tf.Tensor:
        return tf.reduce_prod(tf.cast(tf.io.extract_jpeg_shape(image_bytes)[:2], tf.int64))

    def starts(*values: int, at: int = 0) -> tf.Tensor:
        return tf.reduce_all(tf.equal(head[at : at + len(values)], values))

    # WebP (RFC 9649): after "RIFF", size, "WEBP", the first chunk's kind tells where the size is.
    def webp() -> tf.Tensor:
        lossless_width = 1 + head[21] + head[22] % 64 * 256
        lossless_height = 1 + head[22] // 64 + head[23] * 4 + head[24] % 16 * 1024
        return tf.case(
            [
                (
                    starts(*b"VP8 ", at=12),
                    lambda: number(26, 2, False) % 16384 * (number(28, 2, False) % 16384),
                ),
                (starts(*b"VP8L", at=12), lambda: lossless_width * lossless_height),
                (
                    starts(*b"VP8X", at=12),
                    lambda: (1 + number(24, 3, False)) * (1 + number(27, 3, False)),
                ),
            ],
            default=lambda: tf.constant(-1, tf.int64),
            exclusive=False,
        )

    return tf.case(
        [
            (starts(0x89, *b"PNG\r\n\x1a\n"), lambda: area(16, 4, True)),
            (starts(*b"GIF8"), lambda: area(6, 2, False)),
            (starts(*b"BM"), lambda: area(18, 4, False)),
            (starts(0xFF, 0xD8), jpeg),
            (tf.logical_and(starts(*b"RIFF"), starts(*b"WEBP", at=8)), webp),
            (starts(0xFF, 0x0A), lambda: tf.constant(-1, tf.int64)),  # JPEG XL codestream
            (starts(0, 0, 0, 12, *b"JXL \r\n\x87\n"), lambda: tf.constant(-1, tf.int64)),
        ],
        default=lambda: tf.constant(0, tf.int64),
        exclusive=False,
    )


def decode_gray(image_bytes: tf.Tensor) -> tf.Tensor:
    """One encoded image as grey levels (float32 [h, w], 0..255): the alpha channel where the
    background is transparent (whatever is opaque is ink, whatever its colour), else luma.
    An image of more than MAX_PIXELS is refused before it is decoded (InvalidArgument)."""
    pixels = pixel_count(image_bytes)
    sized = tf.debugging.Assert(
        pixels >= 0, ["The image's size cannot be read before decoding: send PNG, JPEG or WebP."]
    )
    small_enough = tf.debugging.Assert(
        pixels <= MAX_PIXELS,
        [f"The image has more than {MAX_PIXELS:,} pixels: send a smaller one."],
    )
    with tf.control_dependencies([sized, small_enough]):
        image_bytes = tf.identity(image_bytes)
    image = tf.io.decode_image(image_bytes, channels=0, dtype=tf.uint8, expand_animations=False)
    pixels = tf.cast(image, tf.int32)
    channels = tf.shape(pixels)[2]
    alpha = pixels[..., -1]  # grey+alpha or RGBA: the last channel
    transparent = tf.logical_and(tf.equal(channels % 2, 0), tf.reduce_min(alpha) < 255)
    # OpenCV's RGB2GRAY on uint8: 15-bit fixed-point weights, rounded.
    luma = tf.cond(
        channels >= 3,
        lambda: (
            (pixels[..., 0] * 9798 + pixels[..., 1] * 19235 + pixels[..., 2] * 3735 + 16384)
            // 32768
        ),
        lambda: pixels[..., 0],
    )
    gray = tf.cast(tf.where(transparent, alpha, luma), tf.float32)
    height, width = tf.shape(gray)[0], tf.shape(gray)[1]
    side = tf.maximum(height, width)

    def shrink() -> tf.Tensor:
        scale = MAX_SIDE / tf.cast(side, tf.float64)
        size = tf.cast(tf.round(tf.cast([height, width], tf.float64) * scale), tf.int32)
        return tf.image.resize(gray[..., None], tf.maximum(size, 1), method="area")[..., 0]

    return tf.cond(side > MAX_SIDE, shrink, lambda: gray)


def ink_map(gray: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(ink in 0..1, white on black; whether there is any): client.preprocess.ink_map's steps."""
    border = tf.concat([gray[0], gray[-1], gray[:, 0], gray[:, -1]], axis=0)
    background = _median(border)
    uneven = _percentile(tf.abs(border - background), 90) > UNEVEN_BORDER
    light = background > 127
    gray = tf.where(light, 255 - gray, gray)
    background = tf.where(light, 255 - background, background)
    ink = tf.maximum(gray - background, 0)
    photo = tf.logical_and(uneven, tf.size(ink) > MIN_PHOTO_PIXELS)
    ink = tf.cond(photo, lambda: tf.maximum(ink - _slow_background(ink), 0), lambda: ink)
    peak = tf.reduce_max(ink)
    found = peak >= MIN_CONTRAST
    ink = ink / tf.maximum(peak, 1.0)
    return tf.where(ink < INK_LEVEL / 2, 0.0, ink), found


def _median(values: tf.Tensor) -> tf.Tensor:
    ordered = tf.sort(values)
    n = tf.size(values)
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


def _percentile(values: tf.Tensor, q: float) -> tf.Tensor:
    """numpy's default (linear) percentile."""
    ordered = tf.sort(values)
    n = tf.size(values)
    position = q / 100 * tf.cast(n - 1, tf.float32)
    low = tf.cast(tf.floor(position), tf.int32)
    high = tf.minimum(low + 1, n - 1)
    return ordered[low] + (position - tf.floor(position)) * (ordered[high] - ordered[low])


def _slow_background(ink: tf.Tensor) -> tf.Tensor:
    """Uneven lighting: the image shrunk to a 32x32 grid (area), cut to whole levels, a 9x9
    median there (edges repeated), enlarged back (bilinear). Ink is the minority in a window
    wider than strokes, so the median is the background."""
    small = tf.image.resize(ink[..., None], (SMOOTH_GRID, SMOOTH_GRID), method="area")[..., 0]
    small = tf.floor(tf.clip_by_value(small, 0, 255))
    half = SMOOTH_WINDOW // 2
    edges = tf.clip_by_value(tf.range(-half, SMOOTH_GRID + half), 0, SMOOTH_GRID - 1)
    padded = tf.gather(tf.gather(small, edges, axis=0), edges, axis=1)
    windows = tf.image.extract_patches(
        padded[None, ..., None],
        sizes=[1, SMOOTH_WINDOW, SMOOTH_WINDOW, 1],
        strides=[1, 1, 1, 1],
        rates=[1, 1, 1, 1],
        padding="VALID",
    )[0]
    smooth = tf.sort(windows, axis=-1)[..., SMOOTH_WINDOW**2 // 2]
    size = tf.shape(ink)[:2]
    return tf.image.resize(smooth[..., None], size, method="bilinear")[..., 0]


def normalise(ink: tf.Tensor) -> tf.Tensor:
    """All the ink as an MNIST digit (float32 [28, 28], 0..1): 20x20 box, centre of mass centred.
    `ink` must hold some (found by ink_map)."""
    mask = ink >= INK_LEVEL
    # Keep the anti-aliased edges next to the strokes, drop faint ink elsewhere.
    near = _dilate_square(tf.cast(mask, tf.float32)) > 0
    digit = tf.where(near, ink, 0.0)
    rows = tf.where(tf.reduce_any(mask, axis=1))[:, 0]
    cols = tf.where(tf.reduce_any(mask, axis=0))[:, 0]
    digit = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    digit = even_strokes(digit)

    height, width = tf.shape(digit)[0], tf.shape(digit)[1]
    longer = tf.cast(tf.maximum(height, width), tf.float64)
    scale = DIGIT_BOX / longer
    size = tf.cast(tf.round(tf.cast([height, width], tf.float64) * scale), tf.int32)
    size = tf.maximum(size, 1)
    # Shrinking: area resampling averages every source pixel under a target pixel (anti-aliasing).
    small = tf.cond(
        scale < 1,
        lambda: tf.image.resize(digit[..., None], size, method="area")[..., 0],
        lambda: tf.image.resize(digit[..., None], size, method="bilinear")[..., 0],
    )
    small = tf.maximum(small, 0)
    small = small / tf.maximum(tf.reduce_max(small), 1e-12)

    # Whole-pixel shift as MNIST did (keeps strokes sharp), kept inside the field.
    cy, cx = _centre_of_mass(small)
    room = tf.cast(MNIST_SIZE - size, tf.float64)
    top = tf.cast(tf.clip_by_value(tf.round(MNIST_SIZE / 2 - cy), 0.0, room[0]), tf.int32)
    left = tf.cast(tf.clip_by_value(tf.round(MNIST_SIZE / 2 - cx), 0.0, room[1]), tf.int32)
    out = tf.pad(small, [[top, MNIST_SIZE - size[0] - top], [left, MNIST_SIZE - size[1] - left]])
    return tf.clip_by_value(tf.ensure_shape(out, (MNIST_SIZE, MNIST_SIZE)), 0, 1)


def _centre_of_mass(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """In pixel-index units, as MNIST's centring (its digits' centres of mass average 14.0)."""
    image = tf.cast(image, tf.float64)
    total = tf.reduce_sum(image)
    ys = tf.cast(tf.range(tf.shape(image)[0]), tf.float64)
    xs = tf.cast(tf.range(tf.shape(image)[1]), tf.float64)
    cy = tf.reduce_sum(ys[:, None] * image) / total
    cx = tf.reduce_sum(xs[None, :] * image) / total
    return tf.round(cy * COM_STEPS) / COM_STEPS, tf.round(cx * COM_STEPS) / COM_STEPS


def contour_length(binary: tf.Tensor) -> tf.Tensor:
    """The total length of the outlines of a boolean image's shapes and holes (float64)."""
    pixels = tf.pad(tf.cast(binary, tf.int32), [[1, 1], [1, 1]])
    height, width = tf.shape(binary)[0], tf.shape(binary)[1]
    code = tf.zeros_like(pixels[1:-1, 1:-1])
    for k, (dy, dx) in enumerate(_RING):
        code += pixels[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] * (1 << k)
    lengths = tf.gather(tf.constant(CONTOUR_TABLE, tf.float64), code)
    return tf.reduce_sum(tf.where(binary, lengths, 0.0))


def even_strokes(digit: tf.Tensor) -> tf.Tensor:
    """Thicken hairlines and thin out marker strokes towards MNIST's stroke width."""
    binary = digit >= INK_LEVEL
    side = tf.maximum(tf.shape(digit)[0], tf.shape(digit)[1])
    area = tf.reduce_sum(tf.cast(binary, tf.float64))
    perimeter = contour_length(binary)
    # A stroke of length L and width w has area L*w and perimeter about 2L.
    width = 2 * area / tf.maximum(perimeter, 1e-12)
    side_f = tf.cast(side, tf.float64)
    ratio = width / side_f

    def thicken() -> tf.Tensor:
        grow = tf.cast(tf.maximum(tf.round((TARGET_STROKE * side_f - width) / 2), 1.0), tf.int32)
        # Padded first so that a dilated stroke is not cut at the crop's edge.
        return dilate_disk(tf.pad(digit, [[grow, grow], [grow, grow]]), grow)

    def thin() -> tf.Tensor:
        shrink = tf.cast(tf.maximum(tf.round((width - TARGET_STROKE * side_f) / 2), 1.0), tf.int32)
        thinner = -dilate_disk(-digit, shrink)
        # Never erode a digit away: keep the original when thinning would remove most of it.
        kept = tf.reduce_sum(tf.cast(thinner >= INK_LEVEL, tf.float64))
        return tf.cond(kept >= 0.2 * area, lambda: thinner, lambda: digit)

    measurable = tf.logical_and(side >= MIN_EVEN_SIDE, perimeter > 0)
    return tf.case(
        [
            (tf.logical_and(measurable, ratio < THIN_STROKE), thicken),
            (tf.logical_and(measurable, ratio > THICK_STROKE), thin),
        ],
        default=lambda: digit,
        exclusive=False,
    )


def _dilate_square(image: tf.Tensor) -> tf.Tensor:
    """3x3 grey dilation; outside the image does not count."""
    rows = _widen(image, 1)
    height = tf.shape(rows)[0]
    padded = tf.pad(rows, [[1, 1], [0, 0]], constant_values=tf.float32.min)
    return tf.maximum(rows, tf.maximum(padded[:height], padded[2 : 2 + height]))


# Shifted slices and maxima rather than max pooling: TensorFlow's CPU max pool on one channel is
# far slower than an element-wise maximum of the same image (bench/RESULTS.md).
def _widen(rows: tf.Tensor, step: tf.Tensor | int) -> tf.Tensor:
    """Each pixel the maximum of itself and the pixels `step` to its left and right (outside the
    image does not count). Rows already dilated to half-width h come out at h + step, if
    step <= 2h + 1: the three windows then overlap or touch."""
    width = tf.shape(rows)[1]
    padded = tf.pad(rows, [[0, 0], [step, step]], constant_values=tf.float32.min)
    left, right = padded[:, :width], padded[:, 2 * step : 2 * step + width]
    return tf.maximum(rows, tf.maximum(left, right))


def dilate_disk(image: tf.Tensor, radius: tf.Tensor) -> tf.Tensor:
    """Grey dilation by OpenCV's elliptic structuring element of size 2*radius+1 (outside the
    image does not count), in O(radius) element-wise passes rather than O(radius**2).

    That disk is rows of half-width round(sqrt(r**2 - dy**2)), so the dilation is the maximum over
    dy of the image dilated along its rows by that half-width, moved dy up and down. Taken from
    the outer rows inwards, the half-width only grows.
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    radius = tf.cast(radius, tf.int32)
    r = tf.cast(radius, tf.float64)
    # Nothing all around, as far as the disk reaches: moving by dy is then a slice, and widening
    # rows never misses the part of a window that lies inside the image.
    padded = tf.pad(image, [[radius, radius], [radius, radius]], constant_values=tf.float32.min)

    def widen_to(need, half, rows):
        def more(half, rows):
            step = tf.minimum(need - half, 2 * half + 1)
            return half + step, _widen(rows, step)

        return tf.while_loop(lambda half, _: half < need, more, (half, rows))

    def step(dy, half, rows, out):
        need = tf.cast(tf.round(tf.sqrt(r * r - tf.cast(dy * dy, tf.float64))), tf.int32)
        half, rows = widen_to(need, half, rows)
        down = rows[radius - dy : radius - dy + height]
        up = rows[radius + dy : radius + dy + height]
        return dy - 1, half, rows, tf.maximum(out, tf.maximum(down, up))

    _, _, _, out = tf.while_loop(
        lambda dy, *_: dy >= 0,
        step,
        (radius, tf.constant(0), padded, padded[radius : radius + height]),
    )
    return out[:, radius : radius + width]


def image_to_mnist(image_bytes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One encoded image -> (float32 [28, 28] digit, bool: there was ink). No ink: zeros."""
    ink, found = ink_map(decode_gray(image_bytes))
    digit = tf.cond(
        found, lambda: normalise(ink), lambda: tf.zeros((MNIST_SIZE, MNIST_SIZE), tf.float32)
    )
    return digit, found


def images_to_mnist(image_bytes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A batch of encoded images (string [n]) -> (float32 [n, 28, 28, 1], bool [n])."""
    digits, found = tf.map_fn(
        image_to_mnist,
        image_bytes,
        fn_output_signature=(
            tf.TensorSpec((MNIST_SIZE, MNIST_SIZE), tf.float32),
            tf.TensorSpec((), tf.bool),
        ),
    )
    return digits[..., None], found
