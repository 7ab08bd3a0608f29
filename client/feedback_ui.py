"""People's corrections in the app: "Right" / "Wrong: it is …" / "Not a digit" under an answer,
and the page "Your drawings" (gallery, counts, each loaded version's accuracy on them, delete,
IDX download).

streamlit_app.py calls `pages(draw_page)` once to set up both pages, and `offer(...)` under an
answer. Nothing is saved without a click; a failure to save says why, and the drawing stays.
The store is the one FEEDBACK_DB names (settings.feedback_db: the environment, else .env).
"""

import hashlib
from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

import settings
from client import api, preprocess, results
from feedback.idx import idx_zip
from feedback.split import HELD_ASIDE_PERCENT, held_aside, held_aside_mask
from feedback.store import Store, StoreError, open_store, plural

SAVED = "feedback-saved"  # session state: drawing key -> ("ok" | "error", message)
PER_PAGE = 24  # drawings a page of the gallery shows
COLUMNS = 6
PREDICT_BATCH = 256  # digits per predict request when measuring a version


@st.cache_resource(show_spinner=False)
def store_at(location: str) -> Store:
    """One open store per location and app process (a failure is not cached: Retry opens it)."""
    return open_store(location)


def pages(draw_page: Callable[[], None]) -> None:
    """The app's two pages, in the sidebar's navigation; runs the one asked for."""
    drawings = st.Page(
        drawings_page, title="Your drawings", icon=":material/photo_library:", url_path="drawings"
    )
    st.navigation([st.Page(draw_page, title="Draw", icon="✏️", default=True), drawings]).run()


def _save(record: dict, label_from: str | None, label: str | None, drawing: str) -> None:
    """A button's callback: store the drawing with its label, then say how it went."""
    if label_from is not None:
        label = st.session_state.get(label_from, "")
    try:
        store = store_at(settings.feedback_db())
        store.add(label=label, **record)
        said = ("ok", f"Saved — {plural(store.count(), 'drawing')} so far.")
    except StoreError as e:
        said = ("error", f"Not saved: {e}. Your drawing is still here; try again.")
    st.session_state[SAVED][drawing] = said


def offer(
    image: np.ndarray,
    answer: "api.Prediction | api.ServingError | None",
    model: str,
    source: str,
) -> None:
    """Under an answer: "Right", or "Wrong: it is …" with ten digit buttons and "Not a digit"
    (one piece) or a text field (a number, settings.NOT_A_DIGIT_MARK for a piece that is no
    digit). The record is the drawing, its digits as the model saw them (the answer's
    mnist_image), the answer and the version that gave it."""
    if not isinstance(answer, api.Prediction) or not len(answer.images):
        return
    digits = list(answer.images)
    st.session_state.setdefault(SAVED, {})
    number = results.read(answer.probabilities, answer.is_digit).number
    drawing = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()[:16]
    said = st.session_state[SAVED].get(drawing)
    if said and said[0] == "ok":
        st.success(said[1])
        return
    record = {
        "png": preprocess.encode_png(image),
        "digit_images": digits,
        "source": source,
        "prediction": number,
        "probabilities": answer.probabilities,
        "model_name": model,
        "model_version": answer.version,
    }
    key = f"feedback-{source}-{drawing}"

    def saves(label_from: str | None, label: str | None) -> dict:  # a button's on_click and args
        return {"on_click": _save, "args": (record, label_from, label, drawing)}

    row = st.container(horizontal=True, vertical_alignment="center", gap="small")
    row.button("Right", key=f"{key}-right", type="primary", **saves(None, number))
    row.markdown("Wrong: it is …")
    if len(digits) == 1:
        for d in map(str, range(10)):
            row.button(d, key=f"{key}-{d}", disabled=d == number, **saves(None, d))
        mark = settings.NOT_A_DIGIT_MARK
        row.button(
            "Not a digit", key=f"{key}-not-a-digit", disabled=number == mark, **saves(None, mark)
        )
    else:
        field = f"{key}-number"
        hidden = {"label_visibility": "collapsed", "width": 120}
        row.text_input(
            "Wrong: it is …", key=field, placeholder=number, max_chars=len(digits), **hidden
        )
        row.button("Save", key=f"{key}-save", **saves(field, None))
        row.caption(f"{settings.NOT_A_DIGIT_MARK} for a piece that is not a digit")
    if said:
        st.error(said[1])


# --- The page "Your drawings" -------------------------------------------------------------------


@st.cache_data(ttl=60, show_spinner="Asking the model server…")
def version_accuracies(
    url: str, model: str, images: np.ndarray, labels: np.ndarray, aside: np.ndarray
) -> tuple[list[dict], str | None]:
    """Each loaded version's accuracy on the stored digits, all and held aside; and an error."""
    try:
        versions = [v.version for v in api.get_versions(url, model) if v.state == "AVAILABLE"]
        # Each stored digit as the model saw it, read again through predict_image as a drawing.
        pngs = [preprocess.encode_png(np.asarray(image, np.uint8)) for image in images]
        rows = []
        for version in sorted(versions):
            answers = [
                api.predict(url, model, pngs[i : i + PREDICT_BATCH], str(version))
                for i in range(0, len(labels), PREDICT_BATCH)
            ]
            # Read as the app reads them: a piece the version takes for no digit is that class.
            read = np.concatenate([results.classes(a.probabilities, a.is_digit) for a in answers])
            right = read == labels
            rows.append(
                {
                    "version": version,
                    f"all ({len(labels)})": f"{right.mean():.1%}",
                    f"held aside ({int(aside.sum())}, never trained on)": (
                        f"{right[aside].mean():.1%}" if aside.any() else "-"
                    ),
                }
            )
    except api.ServingError as e:
        return [], e.message
    return rows, None


def drawings_page() -> None:
    st.title("Your drawings")
    try:
        store = store_at(settings.feedback_db())
        count = store.count()
    except StoreError as e:
        st.error(f"Cannot open the store of drawings: {e}")
        st.button("Retry", key="retry-store")
        return
    st.caption(
        f"The drawings you corrected, kept in {store.where}. `python -m train --feedback "
        f"--from-version latest` trains the next version on them; about {HELD_ASIDE_PERCENT}% "
        "are held aside, never trained on, to measure it."
    )
    if not count:
        st.info("No drawings yet: draw a digit, then tell the app whether it read it right.")
        return
    try:
        found = store.digits()
    except StoreError as e:
        st.error(str(e))
        return
    aside = held_aside_mask(found.drawing_ids)

    st.subheader(f"{plural(count, 'drawing')}, {plural(len(found.labels), 'digit')}")
    counts = [int((found.labels == c).sum()) for c in [*range(10), settings.NOT_A_DIGIT]]
    columns = [str(d) for d in range(10)] + [f"{settings.NOT_A_DIGIT_MARK} (not a digit)"]
    # st.table: a plain HTML table, for a few rows (a dataframe is a canvas widget).
    st.table(pd.DataFrame([counts], index=["digits"], columns=columns))
    versions_table(found, aside)
    downloads_and_delete_all(store, found, count)
    gallery(store, count)


def versions_table(found, aside: np.ndarray) -> None:
    st.subheader("How each loaded version reads them")
    with st.expander("Model server"):
        url = st.text_input("Server URL", value=api.default_url(), key="drawings-url").strip()
        model = st.text_input("Model name", value=api.default_model(), key="drawings-model")
    rows, error = version_accuracies(url, model.strip(), found.images, found.labels, aside)
    if error:
        st.warning(error)
    elif rows:
        st.table(pd.DataFrame(rows).set_index("version"))
    else:
        st.info("The server has no version loaded.")


def downloads_and_delete_all(store: Store, found, count: int) -> None:
    left, middle = st.columns(2)
    download = {"file_name": "drawings-idx.zip", "mime": "application/zip", "icon": "⬇️"}
    left.download_button("Download as IDX (zip)", idx_zip(found), **download)
    with middle.popover("Delete all"):
        sure = st.checkbox(f"Yes, delete all {plural(count, 'drawing')}", key="delete-all-sure")
        if st.button("Delete all", type="primary", disabled=not sure, key="delete-all"):
            _delete(store, None)


def gallery(store: Store, count: int) -> None:
    st.subheader("Gallery, newest first")
    pages_count = -(-count // PER_PAGE)
    page = 1
    if pages_count > 1:
        page = st.number_input("Page", 1, pages_count, 1, key="gallery-page")
    shown = store.drawings(limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    for start in range(0, len(shown), COLUMNS):
        row = shown[start : start + COLUMNS]
        for column, drawing in zip(st.columns(COLUMNS)[: len(row)], row, strict=True):
            with column:
                gallery_item(store, drawing)


def gallery_item(store: Store, drawing) -> None:
    st.image(drawing.png, width="stretch")
    read = (
        f"read {drawing.prediction} by v{drawing.model_version}"
        if drawing.prediction is not None and drawing.model_version is not None
        else drawing.source
    )
    st.markdown(f"**{drawing.label}** · {read}")
    st.caption(
        f"#{drawing.id} · {drawing.created:%Y-%m-%d %H:%M}"
        + (" · held aside" if held_aside(drawing.id) else "")
    )
    if st.button("Delete", key=f"delete-{drawing.id}"):
        _delete(store, drawing.id)


def _delete(store: Store, drawing_id: int | None) -> None:
    try:
        deleted = store.delete_all() if drawing_id is None else store.delete([drawing_id])
    except StoreError as e:
        st.error(str(e))
        return
    st.toast(f"Deleted {plural(deleted, 'drawing')}.")
    st.rerun()
