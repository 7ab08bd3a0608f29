"""`python -m export list`: the versions under a model base path with their key metrics.

python -m export list [--model-base-path models/mnist]
"""

import argparse
import sys
from pathlib import Path

import settings
from export.saved_model import read_metrics
from export.versions import list_versions

COLUMNS = ("version", "created", "arch", "data", "train", "epochs", "test acc", "params")
COLUMNS += ("seconds", "signatures")


def version_row(version: int, metrics: dict) -> tuple[str, ...]:
    dataset = metrics.get("dataset", {})
    accuracy = metrics.get("test_accuracy")
    params = metrics.get("parameters")
    seconds = metrics.get("training_seconds")
    return (
        str(version),
        metrics.get("created", "-").replace("T", " ").split("+")[0],
        metrics.get("arch", "-") + (f" x{n}" if (n := metrics.get("members", 1)) > 1 else ""),
        dataset.get("source", "-"),
        str(dataset.get("train", "-")),
        str(metrics.get("epochs", "-")),
        f"{accuracy:.2%}" if isinstance(accuracy, int | float) else "-",
        f"{params:,}" if isinstance(params, int) else "-",
        f"{seconds:.0f}" if isinstance(seconds, int | float) else "-",
        ",".join(metrics.get("signatures", {})) or "-",
    )


def format_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [COLUMNS, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def list_command(base_path: Path) -> int:
    if not base_path.is_dir():
        print(f"error: {base_path}: no such folder", file=sys.stderr)
        return 2
    versions = list_versions(base_path)
    if not versions:
        print(f"no versions under {base_path} (train one with: python -m train)")
        return 0
    rows = [version_row(v, read_metrics(base_path / str(v))) for v in versions]
    print(f"{base_path}\n{format_table(rows)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="print every version with its key metrics")
    ls.add_argument("--model-base-path", type=Path, default=settings.MODEL_BASE_PATH)
    args = p.parse_args(argv)
    return list_command(args.model_base_path)


if __name__ == "__main__":
    sys.exit(main())
