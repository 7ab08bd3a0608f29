"""People's corrections, kept for the next model version: client -> feedback -> train.

A store (SQLite by default, PostgreSQL for several app replicas) holds each corrected drawing as
PNG, each of its digits as the model saw it (28x28), the label, what the model answered and which
version answered. `python -m feedback` manages it; `python -m train --feedback` trains on it.
"""
