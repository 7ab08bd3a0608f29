"""A training run's progress, as a small JSON file that others read while it trains.

`python -m train --progress-file PATH` writes it; `make run` (scripts/start_server_and_app.py)
prints it, and the app shows it as a banner. States: "training" (with `fraction`, 0..1, of the
whole run, and the model and step it is at), then "exported" (with the `version` and its
`test_accuracy`). The file is replaced whole each time, so a reader never sees half of one.
"""

import json
import os
import time
from pathlib import Path

WRITE_EVERY_SECONDS = 0.5


def write(path: Path, **fields) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({**fields, "updated": time.time()}))
    os.replace(tmp, path)


def read(path: Path) -> dict | None:
    """The last progress written, or None if there is none (or it cannot be read)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def callback(path: Path, model: int, models: int, steps: int):
    """A Keras callback writing the progress of model `model` (0-based) of `models`, each of
    `steps` optimizer steps, at most every WRITE_EVERY_SECONDS."""
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step, self.last = 0, 0.0

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            now = time.monotonic()
            if now - self.last >= WRITE_EVERY_SECONDS or self.step == steps:
                self.last = now
                write(
                    path,
                    state="training",
                    model=model + 1,
                    models=models,
                    step=self.step,
                    steps=steps,
                    fraction=(model + self.step / steps) / models,
                )

    return Progress()
