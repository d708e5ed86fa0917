"""The command-line reference, generated from ``cli.build_parser()`` when the docs are built.

The ``cli-reference`` directive walks the argparse parser and its sub-commands (recursively) and
writes, for each command, its help, its usage line, every argument with its help text and the
examples of its epilog. Nothing is written by hand, so the page cannot go stale: a new sub-command
or option appears at the next build. In a reStructuredText page, whose title underline is ``=``
(each command is a section underlined with ``-``)::

    .. cli-reference::

argparse has no public API to list a parser's arguments or sub-commands; this reads
``parser._actions`` and the ``choices`` of its ``_SubParsersAction``, as ``argparse``'s own help
formatter and sphinx-argparse do.
"""

import argparse
import importlib
import re

from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

#: Help output is wrapped at this width, whatever the terminal of the build.
WIDTH = 100


def _formatter(parser):
    return parser.formatter_class(prog=parser.prog, width=WIDTH)


def commands(parser, path=(), help_text=None):
    """Every command of ``parser``, depth first: ``(path, parser, help)``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    path : tuple of str
        Sub-command names leading to ``parser`` (``()`` for the top-level parser).
    help_text : str, optional
        The line that the parent's list of sub-commands gives ``parser`` (default: its description).

    Returns
    -------
    list of (tuple of str, argparse.ArgumentParser, str)
        ``path`` is ``()`` for ``parser`` itself and ``("cache",)`` for ``cli.py cache``; an alias
        of a sub-command is not listed again.
    """
    found = [(path, parser, help_text or parser.description or "")]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:  # one per sub-command (``choices`` also maps aliases)
                found += commands(action.choices[choice.dest], path + (choice.dest,), choice.help)
    return found


def _inline(text):
    """``text`` as reStructuredText inline content: `quoted` words become literals, the rest is
    escaped, so that help strings such as ``results/*`` render as written."""
    parts = re.split(r"`([^`]+)`", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"``{part}``")
        else:
            out.append(re.sub(r"([\\*_|`<>\[\]])", r"\\\1", part))
    return "".join(out)


def _literal(text, indent="   "):
    lines = ["", ".. code-block:: text", ""]
    lines += [indent + line if line.strip() else "" for line in text.rstrip().splitlines()]
    return lines + [""]


def _arguments(parser):
    """The ``(invocation, help)`` of each documented argument of ``parser`` (not sub-command lists)."""
    formatter = _formatter(parser)
    rows = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        invocation = formatter._format_action_invocation(action)
        help_text = formatter._expand_help(action) if action.help else ""
        rows.append((invocation, " ".join(help_text.split())))
    return rows


def command_rst(path, parser, help_text, prog="cli.py"):
    """reStructuredText lines of one command's section (see :func:`commands`)."""
    title = " ".join((prog,) + path)
    anchor = "cli-" + ("-".join(path) or "main")
    lines = [f".. _{anchor}:", "", f"``{title}``", "-" * (len(title) + 4), ""]
    if help_text:
        lines += [_inline(help_text), ""]
    lines += _literal(_formatter(parser)._format_usage(parser.usage, parser._actions,
                                                         parser._mutually_exclusive_groups, "usage: ").strip())
    lines += [f".. program:: {title}", ""]
    for invocation, text in _arguments(parser):
        lines += [f".. option:: {invocation}", ""]
        lines += [f"   {_inline(text)}" if text else "", ""]
    if parser.epilog:
        heading, _, rest = parser.epilog.partition("\n")
        if heading == "examples:":  # the project's epilogs: examples (and notes), kept as written
            lines += ["Examples:", ""] + _literal(rest)
        else:
            lines += _literal(parser.epilog)
    return lines


def reference_rst(parser, prog="cli.py"):
    """reStructuredText lines of the whole reference: one section per command of ``parser``."""
    lines = []
    for path, sub, help_text in commands(parser):
        lines += command_rst(path, sub, help_text, prog=prog)
    return lines


class CliReference(SphinxDirective):
    """``cli-reference``: the reference of the parser that ``:module:``'s ``:function:`` builds
    (``cli.build_parser`` by default)."""

    option_spec = {"module": directives.unchanged, "function": directives.unchanged}

    def run(self):
        module = importlib.import_module(self.options.get("module", "cli"))
        parser = getattr(module, self.options.get("function", "build_parser"))()
        self.env.note_dependency(module.__file__)  # rebuilt when the parser's module changes
        return self.parse_text_to_nodes("\n".join(reference_rst(parser, prog=parser.prog)),
                                        allow_section_headings=True)


def setup(app):
    app.add_directive("cli-reference", CliReference)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
