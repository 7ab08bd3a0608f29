"""Draw a digit or a number; a CNN trained on MNIST, served by TensorFlow Serving, reads it.

    streamlit run client --server.port 8502

Talks REST to TF_SERVING_URL (default: the local server) and never imports TensorFlow.
"""

import io

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageOps, UnidentifiedImageError
from streamlit_drawable_canvas import st_canvas

from client import api, preprocess, results

CANVAS_SIZE = 280
ZOOM = 5  # the 28x28 view, enlarged to 140 pixels a digit
VERSION_CHECK_SECONDS = 2.0  # how often the sidebar looks for new versions
MAX_UPLOAD_SIDE = 1000  # photos are shrunk to this first; digits need far fewer pixels
# TF Serving's version states, as the selector words them (END: unloaded, or failed to load).
STATE_WORDS = {
    "AVAILABLE": "",
    "START": " (starting)",
    "LOADING": " (loading)",
    "UNLOADING": " (unloading)",
    "END": " (unloaded)",
}


def version_options(url: str, model: str) -> tuple[dict[str, str], str, str | None]:
    """Selector choices (value -> what the person reads), where latest and each label point
    now, and the error that prevented more. Choices stay worded the same when a label moves,
    so a selection survives it."""
    options = {api.LATEST: "latest"}
    try:
        versions = api.get_versions(url, model)
        labels = api.get_labels(url, model)
    except api.ServingError as e:
        return options, "", e.message
    available = [v.version for v in versions if v.state == "AVAILABLE"]
    pointers = [f"latest: v{max(available)}"] if available else ["latest: none available"]
    for label, version in labels.items():
        options[label] = f"label {label}"
        pointers.append(f"{label}: v{version}")
    for v in versions:
        options[str(v.version)] = f"version {v.version}{STATE_WORDS.get(v.state, v.state.lower())}"
        if v.state == "END" and v.error:
            options[str(v.version)] = f"version {v.version} (failed to load)"
            pointers.append(f"v{v.version} failed to load: {v.error}")
    return options, " · ".join(pointers), None


# Each stroke reruns the page; the versions need not be asked for each time (three requests),
# since the watcher below notices changes and clears this cache.
cached_version_options = st.cache_data(ttl=VERSION_CHECK_SECONDS, show_spinner=False)(
    version_options
)


@st.fragment(run_every=VERSION_CHECK_SECONDS)
def watch_versions(url: str, model: str, shown: tuple) -> None:
    """Reruns the page when the server's versions or labels change: no restart, no click."""
    if version_options(url, model) != shown:
        cached_version_options.clear()
        st.rerun()


def sidebar() -> dict:
    with st.sidebar:
        st.header("Model server")
        url = st.text_input("Server URL", value=api.default_url()).strip()
        model = st.text_input("Model name", value=api.default_model()).strip()
        found = cached_version_options(url, model)
        options, pointers, error = found
        if error:
            st.error(error)
            st.button("Retry", key="retry-sidebar", on_click=cached_version_options.clear)
        choices = list(options)
        target = st.selectbox("Version", choices, format_func=options.get, key="target")
        if pointers:
            st.caption(f"Now serving {pointers}")
        watch_versions(url, model, found)

        st.header("Drawing")
        stroke = st.slider("Stroke width", 5, 50, 22)

        st.header("Compare")
        compare = st.toggle("Compare two versions")
        other = None
        if compare:
            other = st.selectbox(
                "Compare with",
                choices,
                index=min(1, len(choices) - 1),
                format_func=options.get,
                key="other",
            )
        st.caption(
            f'"Not sure" means the top probability is under {results.NOT_SURE_BELOW:.0%} '
            "(for a number: any of its digits)."
        )
    return {"url": url, "model": model, "target": target, "other": other, "stroke": stroke}


def model_view(digits: list[np.ndarray]) -> np.ndarray:
    """The 28x28 images the model receives, side by side, enlarged without smoothing."""
    gap = np.full((28, 1), 0.5, np.float32)  # a grey line between digits
    strip = digits[0]
    for digit in digits[1:]:
        strip = np.hstack([strip, gap, digit])
    return np.kron(strip, np.ones((ZOOM, ZOOM), np.float32))


def top3_chart(probabilities: np.ndarray) -> alt.LayerChart:
    top = results.top_k(probabilities, 3)
    data = pd.DataFrame({"digit": [str(d) for d, _ in top], "probability": [p for _, p in top]})
    bars = (
        alt.Chart(data, height=alt.Step(26))
        .mark_bar()
        .encode(
            x=alt.X(
                "probability:Q",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%", title=None),
            ),
            y=alt.Y("digit:N", sort="-x", title=None, axis=alt.Axis(labelFontSize=14)),
            tooltip=["digit", alt.Tooltip("probability:Q", format=".1%")],
        )
    )
    labels = bars.mark_text(align="left", dx=4).encode(text=alt.Text("probability:Q", format=".0%"))
    return bars + labels


def show_prediction(digits: list[np.ndarray], server: dict, target: str, key: str) -> None:
    """Asks `target` about the digits and shows the number, its confidence and the top-3."""
    try:
        answer = api.predict(server["url"], server["model"], np.stack(digits), target)
    except api.ServingError as e:
        st.error(e.message)
        if e.kind in ("unreachable", "timeout"):
            st.button("Retry", key=f"retry-{key}", on_click=cached_version_options.clear)
        return

    number, confidences = results.read_number(answer.probabilities)
    st.markdown(f"## Prediction: {number}")
    if not results.is_sure(confidences):
        st.warning(
            f"Not sure: the model gives it {min(confidences):.0%}, under "
            f"{results.NOT_SURE_BELOW:.0%}. Try drawing it larger, or more like a printed digit."
        )
    if len(digits) > 1:
        each = "  ·  ".join(f"**{d}** ({p:.0%})" for d, p in zip(number, confidences, strict=True))
        st.write(f"Digit by digit: {each}")
    if answer.version is not None:
        st.caption(f"Answered by version {answer.version} ({answer.version_source}).")
    else:
        st.caption("The server did not say which version answered.")

    st.caption("Top 3" + (" for each digit" if len(digits) > 1 else ""))
    charts = st.columns(min(len(digits), 4)) if len(digits) > 1 else [st.container()]
    for i, row in enumerate(answer.probabilities):
        with charts[i % len(charts)]:
            st.altair_chart(top3_chart(row), width="stretch")


def show_results(digits: list[np.ndarray], server: dict, key: str) -> None:
    if server["other"] is None:
        show_prediction(digits, server, server["target"], key)
        return
    for column, target in zip(st.columns(2), (server["target"], server["other"]), strict=True):
        with column:
            st.subheader(target if not target.isdigit() else f"version {target}")
            show_prediction(digits, server, target, f"{key}-{target}")


def read_upload(data: bytes) -> np.ndarray | None:
    """An uploaded PNG/JPEG as a uint8 RGB or RGBA array, upright; None if it is no image."""
    try:
        image = Image.open(io.BytesIO(data))
        image = ImageOps.exif_transpose(image)  # phone photos are often stored sideways
        image.thumbnail((MAX_UPLOAD_SIDE, MAX_UPLOAD_SIDE))
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def draw_tab(server: dict) -> None:
    canvas_column, view_column = st.columns([3, 2])
    with canvas_column:
        canvas = st_canvas(
            stroke_width=server["stroke"],
            stroke_color="#FFFFFF",
            background_color="#000000",
            width=CANVAS_SIZE,
            height=CANVAS_SIZE,
            drawing_mode="freedraw",
            return_image_data=True,
            key="canvas",
        )
    image = canvas.image_data
    digits = preprocess.split_digits(image) if image is not None else []
    if not digits:
        view_column.info("Draw a digit in the black box.")
        return
    view = view_column.empty()  # filled after the answer, which is what a person waits for
    show_results(digits, server, "draw")
    view.image(model_view(digits), caption="What the model sees (28x28 a digit)", clamp=True)


def upload_tab(server: dict) -> None:
    upload = st.file_uploader("A photo or scan of a digit or number", type=["png", "jpg", "jpeg"])
    if upload is None:
        return
    image = read_upload(upload.getvalue())
    if image is None:
        st.error(f"{upload.name} is not an image that can be read. Upload a PNG or JPEG.")
        return
    digits = preprocess.split_digits(image)
    photo_column, view_column = st.columns([3, 2])
    photo_column.image(image, caption=upload.name, width=CANVAS_SIZE)
    if not digits:
        view_column.info("No digit found in this image: the ink needs to stand out from the paper.")
        return
    view_column.image(model_view(digits), caption="What the model sees (28x28 a digit)", clamp=True)
    show_results(digits, server, "upload")


st.set_page_config(page_title="Digit recognizer", page_icon="✏️")
server = sidebar()
st.title("✏️ Digit recognizer")
st.write(
    "Draw a digit, or a number with a small gap between its digits: a CNN trained on MNIST, "
    "served by TensorFlow Serving, reads it as soon as you lift the mouse."
)
drawing, uploading = st.tabs(["Draw", "Upload a photo"])
with drawing:
    draw_tab(server)
with uploading:
    upload_tab(server)
