"""The README runs as written: its notebook example, and every command of its ``bash`` blocks.

The commands run in the README's order, in-process through ``cli.main``, in a temporary working
folder (so ``cache/`` and ``results/`` are fresh) on tiny data sets made by fixtures. A command
changes in two ways only: the placeholders of the ``placeholders`` fixture become fixture paths or
outputs of earlier commands, and the flags of :func:`shrink_flags`, which make the work smaller,
are appended. A command that is neither a ``cli.py`` command nor listed in :data:`EXCLUDED` fails the
test, so the README cannot rot.
"""

import glob
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
CLI = (".venv/bin/python", "cli.py")

# Commands not run here, each with the reason and the tests that cover what it does instead.
EXCLUDED = {
    "make demo": "the full demo takes minutes; tests/test_demo.py tests its data and tests/test_cli_runs.py "
                 "demo-like results folders",
    "make test": "the test suite itself",
    "make docs": "installs the docs extra and runs the tutorials' notebooks (minutes); tests/test_docs.py "
                 "builds the same site with warnings as errors and tests/test_examples.py runs the notebooks",
    ".venv/bin/python benchmarks/techniques.py": "a 28-minute benchmark; tests/test_augment.py, "
                                                 "tests/test_batch_augment.py and tests/test_frontend.py test "
                                                 "the techniques, and the grids above run each of them",
    "dask scheduler": "a long-lived scheduler process; tests/test_cluster.py runs a LocalCluster, as this test "
                      "does for tcp://HOST:8786",
    "dask worker tcp://HOST:8786 --nthreads 1": "as for `dask scheduler`",
}

# Flags appended to make a command's work small; none changes what the command does.
TRAINING = ["--max-epochs", "1", "--folds", "1", "--no-progress"]
SHRINK = {"extract": ["--no-progress"], "grid": TRAINING, "cv": TRAINING, "ensemble": TRAINING}


def shrink_flags(args):
    """The :data:`SHRINK` flags of ``cli.main`` arguments ``args``, and one inner split for a nested grid."""
    flags = SHRINK.get(args[0], [])
    selection = args[args.index("--selection") + 1] if "--selection" in args else "nested"  # grid's default
    if "--search" in args and args[args.index("--search") + 1] in ("nested", "flat"):  # deprecated aliases
        selection = args[args.index("--search") + 1]
    if args[0] == "grid" and selection == "nested":
        flags = flags + ["--inner-splits", "1"]  # --inner-splits applies to a nested search only
    return flags


def readme_commands(text):
    """Each command of the ``bash`` blocks of ``text``, as a list of arguments (continuations joined)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                commands.append(argv)
    return commands


def first(pattern):
    """The first path (sorted) matching the glob ``pattern``, which must match something."""
    matches = sorted(glob.glob(pattern))
    assert matches, f"no {pattern} for the README command to use"
    return matches[0]


@pytest.fixture
def placeholders(urbansound_root, esc50_root, tmp_path):
    """README placeholder -> a callable giving what it stands for here (some are outputs of earlier
    commands, so they are looked up when the command runs)."""
    distributed = pytest.importorskip("distributed")
    cnn14, ast_folder = pretrained_checkpoints(tmp_path / "models")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                                       host="127.0.0.1", dashboard_address=":0")
    yield {
        "~/data/UrbanSound8K": lambda: str(urbansound_root),
        "/shared/UrbanSound8K": lambda: str(urbansound_root),
        "~/data/ESC-50": lambda: str(esc50_root),
        "/shared/cache": lambda: "cache",
        "tcp://HOST:8786": lambda: cluster.scheduler_address,
        "cache/features/<dataset>-<id>/<kind>-<key>.h5": lambda: first("cache/features/*/*.h5"),
        "results/<run>/model.joblib": lambda: first("results/*/model.joblib"),
        "panns.checkpoint=~/models/Cnn14_mAP=0.431.pth": lambda: f"panns.checkpoint={cnn14}",
        "checkpoint=~/models/Cnn14_mAP=0.431.pth": lambda: f"checkpoint={cnn14}",
        "ast.checkpoint=~/models/ast-finetuned-audioset-10-10-0.4593": lambda: f"ast.checkpoint={ast_folder}",
        "results/grid-svm-demo-<time>/model.joblib": lambda: first("results/grid-svm-demo-*/model.joblib"),
        "results/grid-svm-demo-<time>/model.onnx": lambda: first("results/grid-svm-demo-*/model.onnx"),
        "results/<optuna-run>/study.db": lambda: first("results/*/study.db"),
        "results/grid-<run>/config.toml": lambda: first("results/grid-*/config.toml"),
    }
    cluster.close()


def pretrained_checkpoints(folder):
    """Stand-ins for the published CNN14 file and AST folder: their layouts, tiny sizes, random weights."""
    import torch

    transformers = pytest.importorskip("transformers")
    from featurestore.features import _cnn14

    folder.mkdir()
    cnn14 = _cnn14.write_random_checkpoint(folder / "Cnn14_mAP=0.431.pth", widths=(2, 4, 4, 8, 8, 8),
                                           embedding_size=8, n_classes=5)
    ast_folder = folder / "ast-finetuned-audioset-10-10-0.4593"
    config = transformers.ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=24, max_length=64, num_labels=5)
    torch.manual_seed(0)
    transformers.ASTForAudioClassification(config).save_pretrained(ast_folder)
    transformers.ASTFeatureExtractor(max_length=64).save_pretrained(ast_folder)
    return cnn14, ast_folder


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """The working folder: ``./cache`` (the default store) holds a small demo data set, the data of
    experiments without ``--dataset``, and ``long_recording.wav`` (6 s) is there for ``predict``."""
    import soundfile as sf

    from featurestore.datasets import demo

    monkeypatch.delenv("FEATURESTORE_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)
    # 10 clips per class (80): a training fold then holds the 5 per class that skorch's validation split needs.
    demo.generate(tmp_path / "cache" / "datasets" / "demo", clips_per_class=10)
    t = np.arange(6 * 22050) / 22050
    sf.write(tmp_path / "long_recording.wav", (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32), 22050)
    return tmp_path


def as_run(argv, placeholders):
    """The ``cli.main`` arguments of a README command: placeholders replaced, globs expanded as a
    shell would, and the flags of :func:`shrink_flags` appended."""
    args = []
    for arg in argv[len(CLI):]:
        arg = placeholders[arg]() if arg in placeholders else arg
        args.extend((sorted(glob.glob(arg)) or [arg]) if "*" in arg else [arg])
    return args + shrink_flags(args)


def test_every_command_is_run_or_excluded():
    commands = [" ".join(argv) for argv in readme_commands(README.read_text())]
    not_cli = [c for c in commands if not c.startswith(" ".join(CLI) + " ") and c not in EXCLUDED]
    assert not_cli == [], "README commands that this test cannot run: add them to EXCLUDED, with the reason"
    assert set(EXCLUDED) <= set(commands), "EXCLUDED lists commands that the README no longer has"


def test_readme_commands_run(workdir, placeholders, capsys, one_torch_thread):
    from cli import main

    commands = [argv for argv in readme_commands(README.read_text()) if " ".join(argv) not in EXCLUDED]
    assert len(commands) > 10
    for argv in commands:
        args = as_run(argv, placeholders)
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 0, f"`{shlex.join(argv)}` (run as cli.py {shlex.join(args)}) exited {code}:\n{err}"
        if args[0] == "predict":
            assert "long_recording.wav" in out
    assert len(glob.glob("results/report-*/comparison.md")) == 1


def test_notebook_example_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    section = text[text.index("## In a notebook"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)  # its cache/ goes to a temporary folder
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    results = namespace["results"]
    assert len(results) == 3 and results["mean_test_score"].max() > 0.3  # 8 classes: chance is 0.125
    assert "mean_test_score" in capsys.readouterr().out
