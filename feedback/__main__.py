"""`python -m feedback`: the store of people's corrections, without the app.

python -m feedback add --label 7 scans/*.png   # images of a 7, read by the model server as
                                               # the app's drawings are (it must be running)
python -m feedback stats                       # what the store holds
python -m feedback export --idx DIR            # MNIST's four IDX files (held-aside = t10k)
python -m feedback delete --all                # or: delete ID...

--db PATH_OR_URL on each: an SQLite file or a SQLAlchemy URL; default FEEDBACK_DB (.env).
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

import settings
from feedback.split import HELD_ASIDE_PERCENT, held_aside, held_aside_mask
from feedback.store import SOURCES, Store, StoreError, check_label, open_store

PROGRESS_FROM = 20  # files; fewer are added without a progress bar


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def add_command(store: Store, label: str, files: list[Path], server: str, model: str) -> int:
    from client.api import ServingError
    from feedback.digits import ImageError, model_view, read_image

    try:
        label = check_label(label, len(label.strip()))
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    skipped = []
    progress = None
    if len(files) >= PROGRESS_FROM:
        from tqdm import tqdm

        progress = tqdm(total=len(files), unit="file", file=sys.stderr)
    for path in files:
        try:
            try:
                data = path.read_bytes()
            except OSError as e:
                raise ImageError(f"cannot read it ({e.strerror})") from e
            image, png = read_image(data, path.name)
            try:
                found = model_view(image, server, model)
            except ServingError as e:
                if progress:
                    progress.close()
                print(f"error: {e.message}", file=sys.stderr)
                print(f"added {plural(files.index(path) - len(skipped), 'drawing')} before "
                      "that; the rest were not read", file=sys.stderr)  # fmt: skip
                return 2
            if not found:
                raise ImageError("no digit found: the ink needs to stand out from the paper")
            check_label(label, len(found))
            store.add(png, found, label, "import")
        except (ImageError, StoreError) as e:
            skipped.append(path)
            message = f"skipped {path}: {e}"
            (progress.write if progress else print)(message, file=sys.stderr)
        if progress:
            progress.update()
    if progress:
        progress.close()
    added = len(files) - len(skipped)
    print(f"added {plural(added, 'drawing')} of {label}; the store now holds {store.count()} "
          f"({store.where})")  # fmt: skip
    if skipped:
        print(f"{len(skipped)} of {len(files)} files skipped (see above)", file=sys.stderr)
        return 1
    return 0


def stats_text(store: Store) -> str:
    """What the store holds, in a few lines."""
    records = store.drawings(with_png=False)
    found = store.digits()
    lines = [f"feedback store: {store.where}"]
    if not records:
        return "\n".join([*lines, "no drawings yet"])
    sources = Counter(r.source for r in records)
    lines.append(
        f"{plural(len(records), 'drawing')} ({plural(len(found.labels), 'digit')}): "
        + ", ".join(f"{sources[s]} {s}" for s in SOURCES if sources[s])
    )
    aside = held_aside_mask(found.drawing_ids)
    aside_drawings = sum(held_aside(r.id) for r in records)
    lines.append(
        f'held aside as the "your drawings" test set (about {HELD_ASIDE_PERCENT}%): '
        f"{plural(aside_drawings, 'drawing')} ({plural(int(aside.sum()), 'digit')})"
    )
    counts = Counter(found.labels.tolist())
    lines.append("digits by label: " + "  ".join(f"{d}: {counts[d]}" for d in range(10)))
    by_version: dict[int, list[bool]] = {}
    for r in records:
        if r.prediction is not None and r.model_version is not None:
            by_version.setdefault(r.model_version, []).append(r.prediction == r.label)
    for version, right in sorted(by_version.items()):
        lines.append(
            f"version {version} answered {len(right)}: read {sum(right)} right, "
            f"{len(right) - sum(right)} wrong"
        )
    return "\n".join(lines)


def export_command(store: Store, folder: Path) -> int:
    from feedback.idx import write_idx

    found = store.digits()
    try:
        paths = write_idx(found, folder)
    except OSError as e:
        print(f"error: cannot write into {folder}: {e.strerror}", file=sys.stderr)
        return 2
    aside = int(held_aside_mask(found.drawing_ids).sum())
    print(f"wrote {len(found.labels) - aside} training and {aside} held-aside digits to {folder}:")
    for path in paths:
        print(f"  {path.name}")
    print(f"train on them with: python -m train --data idx:{folder}")
    return 0


def delete_command(store: Store, ids: list[int], everything: bool, yes: bool) -> int:
    if everything == bool(ids):
        print("error: give the ids of the drawings to delete, or --all", file=sys.stderr)
        return 2
    if everything:
        count = store.count()
        if count and not yes and sys.stdin.isatty():
            answer = input(f"Delete all {count} drawings from {store.where}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        deleted = store.delete_all()
    else:
        deleted = store.delete(ids)
    print(f"deleted {plural(deleted, 'drawing')} from {store.where}")
    if ids and deleted < len(set(ids)):
        print(f"{len(set(ids)) - deleted} of the ids were not in the store", file=sys.stderr)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m feedback", description=__doc__.splitlines()[0])
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--db",
        metavar="PATH_OR_URL",
        help="an SQLite file or a SQLAlchemy URL (default: FEEDBACK_DB, from .env)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", parents=[db], help="add images of one digit (or number)")
    add.add_argument("--label", required=True, help="what the images show, e.g. 7")
    add.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add.add_argument(
        "--server", help="the model server that reads them (default: TF_SERVING_URL, or local)"
    )
    add.add_argument("--model", help="the model's name (default: MODEL_NAME, or .env's)")
    sub.add_parser("stats", parents=[db], help="what the store holds")
    export = sub.add_parser("export", parents=[db], help="write the digits as MNIST IDX files")
    export.add_argument("--idx", required=True, type=Path, metavar="DIR")
    delete = sub.add_parser("delete", parents=[db], help="delete drawings")
    delete.add_argument("ids", nargs="*", type=int, metavar="ID")
    delete.add_argument("--all", action="store_true", help="delete every drawing")
    delete.add_argument("--yes", action="store_true", help="do not ask before --all")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        store = open_store(args.db or settings.feedback_db())
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        if args.command == "add":
            from client import api

            server, model = args.server or api.default_url(), args.model or api.default_model()
            return add_command(store, args.label, args.files, server, model)
        if args.command == "stats":
            print(stats_text(store))
            return 0
        if args.command == "export":
            return export_command(store, args.idx)
        return delete_command(store, args.ids, args.all, args.yes)
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; what was added so far is kept", file=sys.stderr)
        return 130
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
