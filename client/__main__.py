"""`python -m client add`: images into the feedback store, read as the app reads a drawing.

python -m client add --label 7 scans/*.png     # images of a 7, read by the model server (it
                                               # must be running), stored as the app stores them

--label takes settings.NOT_A_DIGIT_MARK, quoted for the shell, for images (or pieces of a number)
that are not digits.

--db PATH_OR_URL: an SQLite file or a SQLAlchemy URL; default FEEDBACK_DB (.env). The store's
other commands need no model server: `python -m feedback stats|export|delete`.
"""

import argparse
import sys
from pathlib import Path

import settings
from client import api, preprocess
from client.preprocess import ImageError
from feedback.__main__ import db_option, with_store
from feedback.store import Store, StoreError, check_label, plural

PROGRESS_FROM = 20  # files; fewer are added without a progress bar


def add_command(store: Store, label: str, files: list[Path], server: str, model: str) -> int:
    try:
        label = check_label(label, len(label.strip()))
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    skipped = []
    progress = tqdm(
        total=len(files), unit="file", file=sys.stderr, disable=len(files) < PROGRESS_FROM
    )
    for done, path in enumerate(files):
        try:
            try:
                data = path.read_bytes()
            except OSError as e:
                raise ImageError(f"cannot read it ({e.strerror})") from e
            image = preprocess.read_image(data, path.name)
            crops = preprocess.digit_crops(image)
            if not crops:
                raise ImageError("no digit found: the ink needs to stand out from the paper")
            try:
                answer = api.predict(server, model, [preprocess.encode_png(c) for c in crops])
            except api.ServingError as e:
                progress.close()
                added = done - len(skipped)
                print(f"error: {e.message}", file=sys.stderr)
                print(
                    f"added {plural(added, 'drawing')} before that; the rest were not read",
                    file=sys.stderr,
                )
                return 2
            check_label(label, len(crops))
            store.add(preprocess.encode_png(image), list(answer.images), label, "import")
        except (ImageError, StoreError) as e:
            skipped.append(path)
            progress.write(f"skipped {path}: {e}", file=sys.stderr)
        progress.update()
    progress.close()
    added = len(files) - len(skipped)
    holds = f"the store now holds {store.count()} ({store.where})"
    print(f"added {plural(added, 'drawing')} of {label}; {holds}")
    if skipped:
        print(f"{len(skipped)} of {len(files)} files skipped (see above)", file=sys.stderr)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m client", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", parents=[db_option()], help="add images of one digit (or number)")
    add.add_argument(
        "--label",
        required=True,
        help=f"what the images show, e.g. 7, or {settings.NOT_A_DIGIT_MARK} for no digit",
    )
    add.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add.add_argument(
        "--server", help="the model server that reads them (default: TF_SERVING_URL, or local)"
    )
    add.add_argument("--model", help="the model's name (default: MODEL_NAME, or .env's)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    server, model = args.server or api.default_url(), args.model or api.default_model()
    return with_store(
        args.db, lambda store: add_command(store, args.label, args.files, server, model)
    )


if __name__ == "__main__":
    sys.exit(main())
