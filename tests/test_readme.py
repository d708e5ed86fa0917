"""The README's notebook example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


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
