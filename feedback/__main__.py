"""`python -m feedback`: the store of people's corrections, without the app.

python -m feedback stats                       # what the store holds
python -m feedback export --idx DIR            # MNIST's four IDX files (held-aside = t10k)
python -m feedback delete --all                # or: delete ID...

--db PATH_OR_URL on each: an SQLite file or a SQLAlchemy URL; default FEEDBACK_DB (.env).
Images are added as the app reads them, through the model server: `python -m client add`.
"""

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import settings
from feedback.idx import write_idx
from feedback.split import HELD_ASIDE_PERCENT, held_aside, held_aside_mask
from feedback.store import SOURCES, Store, StoreError, open_store, plural


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
    lines.append(f"not a digit ({settings.NOT_A_DIGIT_MARK}): {counts[settings.NOT_A_DIGIT]}")
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


def db_option() -> argparse.ArgumentParser:
    """--db, for each command that opens the store (this CLI's and `python -m client add`)."""
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--db",
        metavar="PATH_OR_URL",
        help="an SQLite file or a SQLAlchemy URL (default: FEEDBACK_DB, from .env)",
    )
    return db


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m feedback", description=__doc__.splitlines()[0])
    db = db_option()
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("stats", parents=[db], help="what the store holds")
    export = sub.add_parser("export", parents=[db], help="write the digits as MNIST IDX files")
    export.add_argument("--idx", required=True, type=Path, metavar="DIR")
    delete = sub.add_parser("delete", parents=[db], help="delete drawings")
    delete.add_argument("ids", nargs="*", type=int, metavar="ID")
    delete.add_argument("--all", action="store_true", help="delete every drawing")
    delete.add_argument("--yes", action="store_true", help="do not ask before --all")
    return p


def with_store(db: str | None, work: Callable[[Store], int]) -> int:
    """`work` on the store at `db` (default: FEEDBACK_DB), closed after; its exit status, or 2
    with a one-line error when the store fails, 130 on Ctrl-C."""
    try:
        store = open_store(db or settings.feedback_db())
        try:
            return work(store)
        except KeyboardInterrupt:
            print("interrupted; what was added so far is kept", file=sys.stderr)
            return 130
        finally:
            store.close()
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["add"]:  # the command that was here, for whoever still types it
        print(
            "error: images are added with `python -m client add`, the same arguments: it reads "
            "them through the model server as the app does",
            file=sys.stderr,
        )
        return 2
    args = parser().parse_args(argv)

    def work(store: Store) -> int:
        if args.command == "stats":
            print(stats_text(store))
            return 0
        if args.command == "export":
            return export_command(store, args.idx)
        return delete_command(store, args.ids, args.all, args.yes)

    return with_store(args.db, work)


if __name__ == "__main__":
    sys.exit(main())
