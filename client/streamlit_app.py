"""Draw a digit or a number; a CNN trained on MNIST, served by TensorFlow Serving, reads it.

    streamlit run client --server.port 8502

Talks REST to TF_SERVING_URL (default: the local server) and never imports TensorFlow.
"""

import base64
import contextlib
import html
import json
import time

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

import settings
from client import api, feedback_ui, preprocess, results
from settings import CANVAS_SIZE

UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp"]
ZOOM = 5  # the 28x28 view, enlarged to 140 pixels a digit
VERSION_CHECK_SECONDS = 2.0  # how often the sidebar looks for new versions
# The training banner: progress older than this means the training is no longer running (it
# writes twice a second while it trains, less often while it reads its data); the news of a
# new version stays this long.
STALE_SECONDS = 300
BANNER_SECONDS = 600
# TF Serving's version states, as the selector words them (END: unloaded, or failed to load).
STATE_WORDS = {
    "AVAILABLE": "",
    "START": " (starting)",
    "LOADING": " (loading)",
    "UNLOADING": " (unloading)",
    "END": " (unloaded)",
}
# An answer is one HTML element: it shows at once (Vega-Lite charts were slow to build in the
# script and as slow again to draw, on every stroke), and it replaces the previous answer in
# place. Colours are translucent or inherited, so the light and the dark theme both read well.
ANSWER_STYLE = """<style>
.answer h2 { font-size: 2.25rem; font-weight: 700; padding: 0.5rem 0 1rem; margin: 0; }
.answer h3 { padding: 0 0 0.5rem; margin: 0; }
.answer p { margin: 0 0 1rem; }
.answer .not-sure { padding: 1rem; border-radius: 0.5rem; background: rgba(255, 189, 69, 0.2); }
.answer .small { font-size: 0.875rem; opacity: 0.6; margin-bottom: 0.5rem; }
.answer .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr));
                  gap: 0.5rem 2rem; }
.top3 { display: grid; grid-template-columns: 1.2rem 1fr 2.5rem; gap: 0.4rem 0.5rem;
        align-items: center; font-variant-numeric: tabular-nums; }
.top3 .track { height: 1.2rem; border-radius: 0.2rem; background: rgba(128, 128, 128, 0.15); }
.top3 .bar { height: 100%; border-radius: 0.2rem; background: #0068c9; }
.top3 .value { font-size: 0.875rem; text-align: right; }
</style>"""


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
        other = None
        if st.toggle("Compare two versions"):
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


def model_view(digits: np.ndarray) -> np.ndarray:
    """The 28x28 images the model saw, side by side, enlarged without smoothing."""
    gap = np.full((28, 1), 0.5, np.float32)  # a grey line between digits
    strip = np.hstack([part for digit in digits for part in (gap, digit)][1:])
    return np.kron(strip, np.ones((ZOOM, ZOOM), np.float32))


def top3_chart(probabilities: np.ndarray) -> str:
    """The three likeliest digits as horizontal bars, likeliest first, each with its probability."""
    rows = "".join(
        f'<b>{digit}</b><div class="track" title="{digit}: {p:.1%}">'
        f'<div class="bar" style="width: {p:.1%}"></div></div><span class="value">{p:.0%}</span>'
        for digit, p in results.top_k(probabilities, 3)
    )
    return f'<div class="top3">{rows}</div>'


def answer_html(answer: api.Prediction, title: str | None) -> str:
    """The number, whether the model is sure, which version answered, and the top-3 per digit.
    A piece the model takes for no digit is that message (one piece) or a mark in the number."""
    reading = results.read(answer.probabilities, answer.is_digit)
    pieces = len(reading.accepted)
    parts = [ANSWER_STYLE, '<div class="answer">']
    if title:
        parts.append(f"<h3>{html.escape(title)}</h3>")
    parts.append(f"<h2>{html.escape(results.headline(reading))}</h2>")
    if reading.no_digit and (guess := results.best_guess(reading, 0)):
        parts.append(f'<p class="small">{guess}</p>')
    if not reading.sure:
        parts.append(
            f'<p class="not-sure">Not sure: the model gives it {reading.least_sure:.0%}, under '
            f"{results.NOT_SURE_BELOW:.0%}. Try drawing it larger, or more like a printed "
            "digit.</p>"
        )
    if pieces > 1:
        each = " · ".join(
            f"<b>{html.escape(mark)}</b> ({results.detail(reading, i)})"
            for i, mark in enumerate(reading.number)
        )
        parts.append(f"<p>Digit by digit: {each}</p>")
    if answer.version is not None:
        source = html.escape(answer.version_source)
        parts.append(f'<p class="small">Answered by version {answer.version} ({source}).</p>')
    elif answer.version_source == api.VERSION_NOT_ASKED:
        parts.append('<p class="small">Asking the server which version answered…</p>')
    else:
        parts.append('<p class="small">The server did not say which version answered.</p>')
    parts.append(f'<p class="small">Top 3{" for each digit" if pieces > 1 else ""}</p>')
    charts = "".join(top3_chart(row) for row in answer.probabilities)
    parts.append(f'<div class="charts">{charts}</div></div>')
    return "".join(parts)


Answer = api.Prediction | api.ServingError | None  # None: no digit, nothing asked


def ask(image: np.ndarray | None, server: dict) -> dict[str, Answer]:
    """The answer of the version asked, or of both in compare mode, by target: each digit of
    the image cut out here, then read by the model (which normalises it itself)."""
    targets = [server["target"]] if server["other"] is None else [server["target"], server["other"]]
    crops = preprocess.digit_crops(image) if image is not None else []
    if not crops:
        return dict.fromkeys(targets)
    pngs = [preprocess.encode_png(crop) for crop in crops]
    answers: dict[str, Answer] = {}
    for target in targets:
        try:
            answers[target] = api.predict(server["url"], server["model"], pngs, target)
        except api.ServingError as e:
            answers[target] = e
    return answers


def show_model_view(place, answers: dict[str, Answer], empty: str) -> None:
    """What the model saw (each version normalises its input itself: the first answer's view)."""
    seen = [a for a in answers.values() if isinstance(a, api.Prediction)]
    if seen:
        place.image(
            model_view(seen[0].images), caption="What the model sees (28x28 a digit)", clamp=True
        )
    elif all(a is None for a in answers.values()):
        place.info(empty)


def show_answer(answer: Answer, server: dict, target: str, key: str):
    """Writes two elements whatever happens (the answer or an error, then Retry or nothing), so
    that each run replaces the last one's in place. Leftovers are not left to Streamlit's cleanup
    of stale elements: when the version watcher's run follows at once, it can skip it (seen here:
    an old "Prediction" stayed after a reset, about once in 40; streamlit/streamlit#16708 is the
    same race). Returns the answer's element, for `show_results` to complete."""
    if answer is None:
        st.empty()
        st.empty()
        return None
    if isinstance(answer, api.ServingError):
        st.error(answer.message)
        if answer.kind in ("unreachable", "timeout"):
            st.button("Retry", key=f"retry-{key}", on_click=cached_version_options.clear)
        else:
            st.empty()
        return None
    shown = st.empty()
    shown.html(answer_html(answer, title_of(server, target)))
    st.empty()
    return shown


def title_of(server: dict, target: str) -> str | None:
    """Compare mode heads each answer with the version or label it came from."""
    if server["other"] is None:
        return None
    return f"version {target}" if target.isdigit() else target


def show_results(answers: dict[str, Answer], server: dict, key: str) -> dict[str, Answer]:
    """Each answer in its own column; then, for "latest" or a label, which version gave it: one
    more request each, asked only once the answers show (see client/api.py). Returns the
    answers with their versions."""
    # One answer needs no columns: fewer elements for the browser to redraw on each stroke.
    places = st.columns(len(answers)) if len(answers) > 1 else [contextlib.nullcontext()]
    shown = {}
    for place, (target, answer) in zip(places, answers.items(), strict=True):
        with place:
            shown[target] = show_answer(answer, server, target, f"{key}-{target}")
    for target, element in shown.items():
        answer = answers[target]
        if element is not None and answer.version is None:
            answers[target] = api.answered_by(answer, server["url"], server["model"], target)
            element.html(answer_html(answers[target], title_of(server, target)))
    return answers


@st.fragment
def draw_section(server: dict) -> None:
    """A stroke reruns only this fragment (the canvas and its answer), not the whole page.

    The drawing is read from the canvas's state and answered before anything is written: the
    canvas and the answer then reach the browser together and are drawn in one go. Written
    around a slow predict, they came in two batches, and the browser's second redraw held the
    answer back."""
    drawing = (st.session_state.get("canvas") or {}).get("drawing") or {}
    image = canvas_image(drawing.get("data"))
    answers = ask(image, server)

    canvas_column, view_column = st.columns([3, 2])
    with canvas_column:
        st_canvas(
            stroke_width=server["stroke"],
            stroke_color="#FFFFFF",
            background_color="#000000",
            width=CANVAS_SIZE,
            height=CANVAS_SIZE,
            drawing_mode="freedraw",
            return_image_data=True,
            key="canvas",
        )
    answers = show_results(answers, server, "draw")
    if image is not None:
        feedback_ui.offer(image, answers[server["target"]], server["model"], "canvas")
    # After the answer, which is what a person waits for; the column keeps it in its place.
    show_model_view(view_column, answers, "Draw a digit in the black box.")


def canvas_image(data_url: str | None) -> np.ndarray | None:
    """The canvas's PNG (a data: URL, as streamlit-drawable-canvas sends it) as an RGBA array."""
    if not data_url or ";base64," not in data_url:
        return None
    try:
        return preprocess.read_image(base64.b64decode(data_url.split(";base64,", 1)[1]))
    except preprocess.ImageError:
        return None


def upload_section(server: dict) -> None:
    upload = st.file_uploader("A photo or scan of a digit or number", type=UPLOAD_TYPES)
    if upload is None:
        return
    try:
        image = preprocess.read_image(upload.getvalue(), upload.name)
    except preprocess.ImageError as e:
        st.error(f"{e}.")
        return
    answers = ask(image, server)
    photo_column, view_column = st.columns([3, 2])
    photo_column.image(image, caption=upload.name, width=CANVAS_SIZE)
    no_digit = "No digit found in this image: the ink needs to stand out from the paper."
    show_model_view(view_column, answers, no_digit)
    if any(a is not None for a in answers.values()):
        answers = show_results(answers, server, "upload")
        feedback_ui.offer(image, answers[server["target"]], server["model"], "upload")


def training_progress() -> dict | None:
    """What `make run`'s background training last wrote (train/progress.py), if it is recent;
    the app reads the file itself, since its image carries no train/."""
    try:
        state = json.loads(settings.TRAINING_PROGRESS.read_text())
    except (OSError, ValueError):
        return None
    recent = BANNER_SECONDS if state.get("state") == "exported" else STALE_SECONDS
    return state if time.time() - state.get("updated", 0) < recent else None


@st.fragment(run_every=VERSION_CHECK_SECONDS)
def training_banner(server: dict) -> None:
    """While the full model trains: its progress. Once the server answers with it: that."""
    state = training_progress()
    if state is None:
        return
    if state["state"] == "exported":
        try:
            latest = max(
                v.version
                for v in api.get_versions(server["url"], server["model"])
                if v.state == "AVAILABLE"
            )
        except (api.ServingError, ValueError):
            return
        if latest == state.get("version"):
            st.success(
                f"Version {latest}, the full model, answers now: "
                f"{state.get('test_accuracy', 0):.2%} on MNIST's test set."
            )
        return
    fraction = float(state.get("fraction", 0.0))
    where = (
        f"model {state['model']} of {state['models']}, step {state['step']:,} of {state['steps']:,}"
        if state["state"] == "training"
        else "getting its data ready"
        if state["state"] == "queued"
        else "exporting it"
    )
    st.progress(
        min(max(fraction, 0.0), 1.0),
        text=f"The full model is training in the background ({where}). The quick first model "
        "answers meanwhile; the full one takes over by itself.",
    )


def draw_page() -> None:
    server = sidebar()
    st.title("✏️ Digit recognizer")
    st.write(
        "Draw a digit, or a number with a small gap between its digits: a CNN trained on MNIST, "
        "served by TensorFlow Serving, reads it as soon as you lift the mouse."
    )
    training_banner(server)
    # A switch rather than st.tabs: the browser redraws tabs on every stroke's rerun of the
    # canvas inside them. Without them a drawing's answer shows sooner (bench/client_bench.py;
    # figures in bench/RESULTS.md).
    modes = ["Draw", "Upload a photo"]
    mode = st.segmented_control(
        "Input", modes, default="Draw", required=True, label_visibility="collapsed", key="mode"
    )
    st.space("small")  # room for the canvas's toolbar, which floats above its top edge
    if mode == "Draw":
        draw_section(server)
    else:
        upload_section(server)


st.set_page_config(page_title="Digit recognizer", page_icon="✏️")
feedback_ui.pages(draw_page)  # "Draw" (above) and "Your drawings" (client/feedback_ui.py)
