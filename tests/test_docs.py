"""The documentation: its command-line reference covers the whole parser, and the site builds.

``make docs`` builds the site and runs the tutorials' notebooks (minutes). Here the site is built
the same way, warnings as errors, but without running the notebooks (``nb_execution_mode=off``),
which ``tests/test_examples.py`` runs instead.
"""

import argparse
import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest

sphinx = pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import cli  # noqa: E402
import cli_reference  # noqa: E402


def sub_parsers(parser, path=()):
    """``{path: parser}`` of every command, found through the ``choices`` of the parser's arguments
    (independently of :func:`cli_reference.commands`)."""
    found = {path: parser}
    for action in parser._actions:
        if isinstance(action.choices, dict):
            for name, sub in action.choices.items():
                if isinstance(sub, argparse.ArgumentParser):
                    found.update(sub_parsers(sub, path + (name,)))
    return found


def option_strings(parser):
    """The options and positional names that ``parser``'s own ``--help`` lists (before its epilog)."""
    bare = copy.copy(parser)
    bare.epilog = None  # its examples hold options of other commands
    text = bare.format_help()
    options = set(re.findall(r"(?m)^\s+(-{1,2}[\w-]+)", text)) | set(re.findall(r", (--[\w-]+)", text))
    positionals = {"{" + ",".join(a.choices) + "}" if a.choices else (a.metavar or a.dest) for a in parser._actions
                   if not a.option_strings and a.help != argparse.SUPPRESS and not isinstance(a.choices, dict)}
    return options | positionals


def test_reference_has_a_section_per_command():
    parser = cli.build_parser()
    expected = set(sub_parsers(parser))
    assert {("grid",), ("cv",), ("extract",), ("predict",), ("report",), ("cache",)} <= expected
    assert {path for path, _, _ in cli_reference.commands(parser)} == expected
    text = "\n".join(cli_reference.reference_rst(parser))
    for path in expected:
        title = " ".join(("cli.py",) + path)
        assert f"``{title}``\n" in text, f"no section for {title}"


def test_reference_lists_every_option_of_every_command():
    text = "\n".join(cli_reference.reference_rst(cli.build_parser()))
    sections = re.split(r"(?:^|\n)\.\. _cli-", text)
    for path, parser in sub_parsers(cli.build_parser()).items():
        anchor = "-".join(path) or "main"
        section = next(s for s in sections if s.startswith(f"{anchor}:"))
        for option in option_strings(parser):
            assert re.search(rf"\.\. option:: .*{re.escape(option)}(?![\w-])", section), \
                f"`{' '.join(('cli.py',) + path)}` lacks {option}"
        if parser.epilog:  # the examples, as --help shows them
            assert parser.epilog.splitlines()[1].strip() in section


def test_reference_follows_nested_sub_commands_skips_aliases_and_escapes_help():
    parser = argparse.ArgumentParser(prog="tool")
    outer = parser.add_subparsers(dest="command").add_parser("store", aliases=["st"], help="the *store*")
    inner = outer.add_subparsers(dest="action").add_parser("prune", help="remove `old` sets")
    inner.add_argument("--older-than", metavar="DAYS", help="results/* older than DAYS")
    text = "\n".join(cli_reference.reference_rst(parser, prog="tool"))
    assert "``tool store prune``" in text and "``tool store``" in text
    assert "``tool st``" not in text  # an alias is not a second command
    assert ".. option:: --older-than DAYS" in text
    assert r"results/\* older than DAYS" in text  # not the start of an emphasis
    assert "remove ``old`` sets" in text and r"the \*store\*" in text


def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"
    run = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                          "-D", "nb_execution_mode=off", "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr

    cli_page = (out / "cli.html").read_text()
    for path in sub_parsers(cli.build_parser()):
        assert f'id="cli-{"-".join(path) or "main"}"' in cli_page
    for tutorial in ("first_experiment", "own_dataset", "cluster"):
        assert (out / "tutorials" / f"{tutorial}.html").exists()
    for module in ("featurestore.store", "estimators.svm", "pipelines.splits"):
        assert (out / "api" / "generated" / f"{module}.html").exists()
    assert "class featurestore.store.FeatureStore" in re.sub(r"<[^>]+>", "", (
        out / "api" / "generated" / "featurestore.store.html").read_text())

    # Offline: no page loads a script, a style sheet, a font or an image from the network.
    for page in out.rglob("*.html"):
        remote = re.findall(r'<(?:script|img|link|iframe)\b[^>]*\b(?:src|href)="(?:https?:)?//[^"]*"', page.read_text())
        assert remote == [], f"{page.relative_to(out)} loads {remote[0]}"
