"""What the README and docs/ promise, checked as facts (commands, paths, ports, thresholds).

Every check reads the text with its whitespace collapsed, so reflowing a paragraph or a table
cannot break it; only a changed fact can.
"""

import io
import json
import os
import re
import shlex
import subprocess

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import settings

ROOT = settings.ROOT
README = (ROOT / "README.md").read_text()
DOCS = {
    path.relative_to(ROOT).as_posix(): path.read_text()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
}
# Top-level folders and files of the repository that a document may name. `models/` and `runs/`
# are made at run time (and ignored by git), so a path under them need not exist here.
TRACKED = ("docs", "bench", "train", "serving", "client", "export", "scripts", "tests", ".ci",
           ".streamlit")  # fmt: skip
_PATH = re.compile(rf"(?<![\w./-])((?:{'|'.join(re.escape(t) for t in TRACKED)})/[\w./-]*)")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def flat(text: str) -> str:
    """The text with every run of whitespace (line breaks included) as one space."""
    return re.sub(r"\s+", " ", text)


def command_lines(text: str, program: str) -> list[list[str]]:
    """The arguments after each `program` in the text, up to the end of the command: a backtick,
    a table cell's |, a # comment or the end of the line."""
    found = []
    for match in re.finditer(re.escape(program) + r"((?: [^\s`|#]+)*)", text):
        found.append(shlex.split(match.group(1).replace("$MNIST_DIR", "/mnist")))
    return found


# --- Commands ---------------------------------------------------------------------------------


def test_readme_has_exactly_the_two_setup_commands_and_ci_uses_the_test_one():
    named = set(re.findall(r"(?<![\w-])make ([a-z]+)\b", README))
    assert named == {"run", "test"}, named
    for target in ("run", "test"):
        assert re.search(rf"^ {{4}}(\S+=\S+ )?make {target}\b", README, re.M), target
    targets = subprocess.run(["make", "-pn"], cwd=ROOT, capture_output=True, text=True)
    assert re.search(r"^run:", targets.stdout, re.M) and re.search(r"^test:", targets.stdout, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)


def test_documented_python_commands_exist():
    for name, text in DOCS.items():
        for module in re.findall(r"python -m ([\w.]+)", text):
            path = ROOT / module.replace(".", "/")
            assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), (
                f"{name}: python -m {module}"
            )
        for script in re.findall(r"python (\S+\.py)\b", text):
            assert (ROOT / script).is_file(), f"{name}: python {script}"


def test_documented_training_commands_parse():
    """Every `python -m train ...` and `bench/train_bench.py ...` in the docs takes its flags."""
    from train.__main__ import parse_args

    commands = []
    for text in DOCS.values():
        commands += command_lines(text, "python -m train")
        commands += command_lines(text, "python bench/train_bench.py")
    assert len(commands) >= 4
    for argv in commands:
        if argv == ["--help"]:
            continue
        parse_args(argv)  # argparse exits (and fails the test) on an unknown flag or value


def test_documented_local_server_flags_exist(capsys):
    """TF Serving-style flags (with underscores) named in the docs are the local server's."""
    from serving.__main__ import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    help_text = capsys.readouterr().out
    flags = re.compile(r"--[a-z]+_[a-z_]+")
    heading = "## What TF Serving does and the local server does not"
    texts = [text.partition(heading) for text in DOCS.values()]
    named = {flag for before, _, _ in texts for flag in flags.findall(before)}
    lacking = {flag for _, _, after in texts for flag in flags.findall(after.split("\n## ")[0])}
    assert "--rest_api_host" in named and "--ssl_config_file" in lacking
    for flag in named - lacking:
        assert re.search(rf"{flag}\b", help_text), f"python -m serving has no {flag}"
    for flag in lacking:  # what the docs say it lacks, it lacks
        assert not re.search(rf"{flag}\b", help_text), f"python -m serving has {flag}"


# --- Paths and links --------------------------------------------------------------------------


def test_every_repository_path_named_in_readme_and_docs_exists():
    for name, text in DOCS.items():
        for path in _PATH.findall(text):
            path = path.rstrip(".")
            assert (ROOT / path).exists(), f"{name} names {path}, which is not in the repository"


def test_every_relative_link_in_readme_and_docs_exists():
    for name, text in DOCS.items():
        folder = (ROOT / name).parent
        for target in _LINK.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor in the same page
            assert (folder / target.split("#")[0]).exists(), f"{name} links to missing {target}"


def test_documents_named_in_code_are_in_the_repository():
    """Comments and docstrings point at docs/*.md and bench/*.md: those must be here."""
    text_files = {".py", ".md", ".config", ".toml", ".yml", ".yaml", ".txt", ".in", ""}
    sources = [
        *ROOT.glob("*"),
        *(path for folder in TRACKED for path in (ROOT / folder).rglob("*")),
    ]
    for source in sources:
        if not source.is_file() or source.suffix not in text_files:
            continue
        text = source.read_text(errors="replace")
        for document in re.findall(r"(?<![\w/])((?:docs|bench)/[\w-]+\.md)", text):
            assert (ROOT / document).is_file(), f"{source.relative_to(ROOT)} names {document}"


# --- Facts ------------------------------------------------------------------------------------


def test_readme_ports_are_the_ones_in_dotenv():
    text = flat(README)
    for port in map(int, re.findall(r"localhost:(\d+)", text)):
        assert port in (settings.REST_API_PORT, settings.GRPC_PORT, settings.CLIENT_PORT), port
    assert f"REST {settings.REST_API_PORT}" in text
    assert f"gRPC {settings.GRPC_PORT}" in text
    assert f"app {settings.CLIENT_PORT}" in text
    assert f"`{settings.MODEL_NAME}`" in text


def test_readme_states_the_clients_not_sure_threshold():
    from client import results

    text = flat(README)
    percent = re.findall(r'"Not sure" means the top probability is under (\d+)%', text)
    fraction = re.findall(r'"not sure" below (0\.\d+) \(`client/results.py`\)', text)
    assert percent == [f"{results.NOT_SURE_BELOW * 100:.0f}"]
    assert fraction == [f"{results.NOT_SURE_BELOW:g}"]


def test_parameter_counts_in_the_docs_are_the_models():
    from train.model import build

    counts = {"reference": f"{build('reference').count_params():,}"}
    counts["canvas"] = f"{build('canvas', classes=11).count_params():,}"  # with "not a digit"
    model_md = flat((ROOT / "docs" / "model.md").read_text())
    assert f"{counts['reference']} parameters" in model_md
    assert f"{counts['canvas']} parameters" in model_md
    assert f"({counts['canvas']} parameters)" in flat(README)


def test_readme_curl_example_is_a_seven(sample_model_base):
    body = json.loads((ROOT / "docs" / "digit-7.json").read_text())
    images = np.array(body["instances"], np.float32)
    assert images.shape == (1, 28, 28, 1) and 0 <= images.min() and images.max() <= 1
    serve = tf.saved_model.load(str(sample_model_base / "1")).signatures[settings.SIGNATURE_NAME]
    assert int(serve(image=tf.constant(images))["digit"][0]) == 7
    assert "-d @docs/digit-7.json" in README


def seven_on_paper() -> np.ndarray:
    """docs/digit-7.json's 7 as a scan would have it: 280x280, black ink on white paper."""
    body = json.loads((settings.ROOT / "docs" / "digit-7.json").read_text())
    seven = np.array(body["instances"][0], np.float32)[..., 0]
    big = cv2.resize(seven, (280, 280), interpolation=cv2.INTER_LINEAR)
    return np.round(255 * (1 - np.clip(big, 0, 1))).astype(np.uint8)


def test_the_png_example_is_the_json_seven_and_predict_image_reads_it(sample_model_base):
    data = (settings.ROOT / "docs" / "digit-7.png").read_bytes()
    # UPDATE_DOCS=1 writes it anew; it is made from the JSON example, nothing else.
    if os.environ.get("UPDATE_DOCS") == "1":
        out = io.BytesIO()
        Image.fromarray(seven_on_paper()).save(out, "PNG", optimize=True)
        data = out.getvalue()
        (settings.ROOT / "docs" / "digit-7.png").write_bytes(data)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), seven_on_paper())
    signature = tf.saved_model.load(str(sample_model_base / "1")).signatures["predict_image"]
    assert int(signature(image_bytes=tf.constant([data]))["digit"][0]) == 7
