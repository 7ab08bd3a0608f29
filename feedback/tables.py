"""The store's schema. Changes go through a new migration in feedback/migrations/versions/,
which every store applies when it is opened (tests check the two agree)."""

import sqlalchemy as sa

metadata = sa.MetaData()

# One corrected drawing (or uploaded photo) of a digit or a number.
drawings = sa.Table(
    "drawings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # canvas, upload or import
    # The right number, as the person gave it: settings.NOT_A_DIGIT_MARK for a piece that is none.
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("prediction", sa.String(64)),  # what the model read; None when it was not asked
    sa.Column("probabilities", sa.JSON),  # one row of 10 per digit, as the model answered
    sa.Column("model_name", sa.String(128)),
    sa.Column("model_version", sa.Integer),  # the version that answered
    sa.Column("png", sa.LargeBinary, nullable=False),  # the drawing as it was sent
)

# Each digit of a drawing as the model saw it, with its own label: what training reads.
digits = sa.Table(
    "digits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "drawing_id",
        sa.Integer,
        sa.ForeignKey("drawings.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("position", sa.SmallInteger, nullable=False),  # 0 for the leftmost digit
    sa.Column("label", sa.SmallInteger, nullable=False),  # 0-9, or settings.NOT_A_DIGIT
    sa.Column("image", sa.LargeBinary, nullable=False),  # 28x28 uint8, white on black, row by row
)
