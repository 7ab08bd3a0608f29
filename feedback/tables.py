"""The store's schema. Changes go through a new migration in feedback/migrations/versions/,
which every store applies when it is opened (tests check the two agree)."""

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
)

metadata = MetaData()

# One corrected drawing (or uploaded photo) of a digit or a number.
drawings = Table(
    "drawings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("source", String(16), nullable=False),  # canvas, upload or import
    # The right number, as the person gave it: settings.NOT_A_DIGIT_MARK for a piece that is none.
    Column("label", String(64), nullable=False),
    Column("prediction", String(64)),  # what the model read; None when it was not asked
    Column("probabilities", JSON),  # one row of 10 per digit, as the model answered
    Column("model_name", String(128)),
    Column("model_version", Integer),  # the version that answered
    Column("png", LargeBinary, nullable=False),  # the drawing as it was sent
)

# Each digit of a drawing as the model saw it, with its own label: what training reads.
digits = Table(
    "digits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "drawing_id",
        Integer,
        ForeignKey("drawings.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("position", SmallInteger, nullable=False),  # 0 for the leftmost digit
    Column("label", SmallInteger, nullable=False),  # 0-9, or settings.NOT_A_DIGIT
    Column("image", LargeBinary, nullable=False),  # 28x28 uint8, white on black, row by row
)
