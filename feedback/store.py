"""The feedback store: people's corrected drawings, in SQLite (default) or PostgreSQL.

`open_store(location)` takes a path (an SQLite file, made with its folder if missing) or a
SQLAlchemy URL (`postgresql://user:password@host/db`, `sqlite:///file`), applies the migrations
the store lacks, and returns a `Store`. Every failure is a `StoreError` whose message is one line
a person can read.

Several processes may write at once (app replicas, `python -m client add` beside the app).
SQLite: write-ahead logging lets readers go on while one writes, every transaction takes the
write lock when it begins (BEGIN IMMEDIATE), so a writer never fails half-way on a lock another
took meanwhile, and waits up to BUSY_SECONDS for it. PostgreSQL does this by itself; there,
migrations take an advisory lock so that replicas starting together apply them once.
"""

import datetime
import io
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from PIL import Image, UnidentifiedImageError
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from feedback.tables import digits, drawings
from settings import MAX_PIXELS, NOT_A_DIGIT, NOT_A_DIGIT_MARK

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SOURCES = ("canvas", "upload", "import")
MAX_DIGITS = 64  # the label column's width
BUSY_SECONDS = 30.0  # how long an SQLite writer waits for another's lock before failing
# Any fixed number: the key of the PostgreSQL advisory lock held while migrating.
MIGRATION_LOCK = 0x6D6E6973


class StoreError(Exception):
    """The store cannot do what was asked; the message is one line that says where and why."""


@dataclass
class Drawing:
    id: int
    created: datetime.datetime
    source: str
    label: str
    prediction: str | None
    probabilities: list[list[float]] | None
    model_name: str | None
    model_version: int | None
    png: bytes


@dataclass
class Digits:
    """Every stored digit: (n, 28, 28) uint8 images, their labels and their drawings' ids."""

    images: np.ndarray
    labels: np.ndarray
    drawing_ids: np.ndarray


def store_url(location: str) -> URL:
    """A path or SQLAlchemy URL as the URL to connect to (PostgreSQL through psycopg 3)."""
    if "://" not in location:
        return URL.create("sqlite", database=str(Path(location).expanduser().resolve()))
    try:
        url = make_url(location)
    except sa.exc.ArgumentError as e:
        raise StoreError(f"{location!r} is neither a file path nor a database URL") from e
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def shown(url: URL) -> str:
    """The URL as it may be printed: a file path, or the URL without its password."""
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


def _first_line(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()
    return (text[0] if text else type(original).__name__)[:300]


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        try:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot make the folder for {url.database}: {e.strerror}") from e
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_SECONDS})

    @event.listens_for(engine, "connect")
    def connect(dbapi_connection, _record):
        # Python's sqlite3 would open transactions itself, late and not for DDL; "begin" below
        # opens every one instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a crash loses no commit
        cursor.execute("PRAGMA foreign_keys=ON")  # digits go with their drawing
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def open_store(location: str) -> "Store":
    """The store at `location` (a path or URL), migrated to this product's schema."""
    url = store_url(location)
    try:
        if url.get_backend_name() == "sqlite":
            engine = _sqlite_engine(url)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as e:
        raise StoreError(f"cannot use {shown(url)}: {_first_line(e)}") from e
    store = Store(engine, shown(url))
    try:
        migrate(engine, store.where)
    except StoreError:
        engine.dispose()
        raise
    except sa.exc.SQLAlchemyError as e:
        engine.dispose()
        raise StoreError(f"cannot open the feedback store {store.where}: {_first_line(e)}") from e
    return store


def _alembic_config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def migrate(engine: Engine, where: str) -> None:
    """Apply the migrations the store lacks, once, however many processes open it at once."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = _alembic_config()
    script = ScriptDirectory.from_config(config)
    with engine.begin() as connection:  # on SQLite, BEGIN IMMEDIATE: the write lock
        if connection.dialect.name == "postgresql":
            lock = sa.text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": MIGRATION_LOCK})
        current = MigrationContext.configure(connection).get_current_revision()
        if current == script.get_current_head():
            return
        known = {r.revision for r in script.walk_revisions()}
        if current is not None and current not in known:
            raise StoreError(
                f"the feedback store {where} has schema revision {current}, newer than this "
                "version of the product knows: upgrade the product to use it"
            )
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _check_png(png: bytes) -> None:
    """The drawing must be a whole PNG of at most MAX_PIXELS: the store keeps what the app shows."""
    if not png:
        raise StoreError("the drawing's PNG is empty")
    try:
        image = Image.open(io.BytesIO(png), formats=["PNG"])
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise StoreError(
                f"the drawing is too large: {width * height:,} pixels, at most {MAX_PIXELS:,}"
            )
        image.verify()  # every chunk there and its checksum right, without decoding the pixels
    except Image.DecompressionBombError as e:
        raise StoreError(f"the drawing is too large: more than {MAX_PIXELS:,} pixels") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise StoreError("the drawing is not a PNG image that can be read") from e


def _to_uint8(image: np.ndarray) -> bytes:
    image = np.asarray(image)
    if image.shape != (28, 28):
        raise StoreError(f"a digit must be a 28x28 image, not {image.shape}")
    if image.dtype.kind not in "biuf":
        raise StoreError(f"a digit's pixels must be numbers, not {image.dtype}")
    if image.dtype != np.uint8 and not np.isfinite(image).all():
        raise StoreError("a digit's pixels must be finite numbers from 0 to 1")
    if image.dtype != np.uint8:
        image = np.clip(np.rint(np.asarray(image, np.float32) * 255), 0, 255).astype(np.uint8)
    return image.tobytes()


def plural(count: int, word: str) -> str:
    """`count` `word`s, in words for a person: "1 drawing", "2 drawings"."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def check_label(label: str, digit_count: int) -> str:
    """The label, stripped, if it is a number with one digit per digit the model saw; each may
    be NOT_A_DIGIT_MARK instead, for a piece that is not a digit."""
    label = label.strip()
    if not label or not all(c in string.digits or c == NOT_A_DIGIT_MARK for c in label):
        raise StoreError(
            f"the label must be a number (digits 0-9, or {NOT_A_DIGIT_MARK} for a piece that is "
            f"not a digit), not {label!r}"
        )
    if len(label) != digit_count:
        saw = plural(digit_count, "digit")
        raise StoreError(
            f"the model saw {saw} here, so the label needs {digit_count}, not {len(label)} "
            f"({label}); draw the digits with a small gap between them, and each in one piece"
        )
    return label


def piece_labels(label: str) -> list[int]:
    """A checked label's class for each piece: its digit, or NOT_A_DIGIT for the mark."""
    return [NOT_A_DIGIT if c == NOT_A_DIGIT_MARK else int(c) for c in label]


class Store:
    """One feedback store. Each method is one transaction."""

    def __init__(self, engine: Engine, where: str):
        self.engine = engine
        self.where = where  # for messages: the file, or the URL without password

    def _run(self, what: str, work):
        try:
            with self.engine.begin() as connection:
                return work(connection)
        except sa.exc.SQLAlchemyError as e:
            raise StoreError(f"could not {what} in {self.where}: {_first_line(e)}") from e

    def add(
        self,
        png: bytes,
        digit_images: list[np.ndarray],
        label: str,
        source: str,
        prediction: str | None = None,
        probabilities: np.ndarray | list | None = None,
        model_name: str | None = None,
        model_version: int | None = None,
    ) -> int:
        """Store one corrected drawing with its digits; returns its id."""
        if source not in SOURCES:
            raise StoreError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
        if not digit_images:
            raise StoreError("a drawing without digits cannot be stored")
        if len(digit_images) > MAX_DIGITS:
            raise StoreError(f"at most {MAX_DIGITS} digits a drawing, not {len(digit_images)}")
        label = check_label(label, len(digit_images))
        _check_png(png)
        images = [_to_uint8(d) for d in digit_images]
        if prediction is not None and not (
            isinstance(prediction, str) and len(prediction) <= MAX_DIGITS
        ):
            raise StoreError(f"the prediction must be a short text, not {prediction!r:.40}")
        if probabilities is not None:
            probabilities = np.asarray(probabilities, np.float64)
            # NaN is neither, and infinities are out of range.
            in_range = (0 <= probabilities) & (probabilities <= 1)
            if probabilities.shape not in ((10,), (len(images), 10)) or not in_range.all():
                raise StoreError("the probabilities must be 10 numbers from 0 to 1 a digit")
            probabilities = probabilities.round(6).tolist()
        if model_version is not None and (int(model_version) != model_version or model_version < 0):
            raise StoreError(f"the model version must be a whole number, not {model_version!r}")
        row = {
            "created": datetime.datetime.now(datetime.UTC),
            "source": source,
            "label": label,
            "prediction": prediction,
            "probabilities": probabilities,
            "model_name": model_name,
            "model_version": None if model_version is None else int(model_version),
            "png": bytes(png),
        }

        def work(connection) -> int:
            drawing_id = connection.execute(drawings.insert().values(**row)).inserted_primary_key[0]
            connection.execute(
                digits.insert(),
                [
                    {"drawing_id": drawing_id, "position": i, "label": c, "image": image}
                    for i, (c, image) in enumerate(zip(piece_labels(label), images, strict=True))
                ],
            )
            return int(drawing_id)

        return self._run("save the drawing", work)

    def count(self) -> int:
        """How many drawings the store holds."""
        return self._run(
            "count the drawings",
            lambda c: c.execute(sa.select(sa.func.count()).select_from(drawings)).scalar_one(),
        )

    def label_counts(self) -> dict[int, int]:
        """How many stored digits each label 0-9 has, and under NOT_A_DIGIT how many pieces are
        not digits (0 for none)."""
        query = sa.select(digits.c.label, sa.func.count()).group_by(digits.c.label)
        found = dict(self._run("count the digits", lambda c: c.execute(query).all()))
        return {d: int(found.get(d, 0)) for d in (*range(10), NOT_A_DIGIT)}

    def drawings(
        self, limit: int | None = None, offset: int = 0, with_png: bool = True
    ) -> list[Drawing]:
        """Drawings, newest first (png b"" unless with_png)."""
        columns = [c for c in drawings.c if with_png or c.name != "png"]
        query = sa.select(*columns).order_by(drawings.c.id.desc()).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        rows = self._run("read the drawings", lambda c: c.execute(query).mappings().all())
        return [Drawing(**{"png": b"", **row}) for row in rows]

    def digits(self) -> Digits:
        """Every digit, in the order of its drawing's id and its position."""
        query = sa.select(digits.c.drawing_id, digits.c.label, digits.c.image).order_by(
            digits.c.drawing_id, digits.c.position
        )
        rows = self._run("read the digits", lambda c: c.execute(query).all())
        images = np.frombuffer(b"".join(r.image for r in rows), np.uint8).reshape(-1, 28, 28)
        return Digits(
            images=images.copy(),
            labels=np.array([r.label for r in rows], np.int64),
            drawing_ids=np.array([r.drawing_id for r in rows], np.int64),
        )

    def delete(self, ids: list[int]) -> int:
        """Delete these drawings (and their digits); returns how many there were."""
        ids = [int(i) for i in ids]

        def work(connection) -> int:
            connection.execute(digits.delete().where(digits.c.drawing_id.in_(ids)))
            return connection.execute(drawings.delete().where(drawings.c.id.in_(ids))).rowcount

        return self._run("delete drawings", work)

    def delete_all(self) -> int:
        """Delete every drawing; returns how many there were."""

        def work(connection) -> int:
            connection.execute(digits.delete())
            return connection.execute(drawings.delete()).rowcount

        return self._run("delete the drawings", work)

    def close(self) -> None:
        self.engine.dispose()
