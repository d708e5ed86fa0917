"""report.html (issue 15): one self-contained page per results folder and per `report --html`, checked
in headless Chromium: it loads without console errors, and every audio player points at a file that exists."""

import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

from cli import main
from conftest import CLASSES, write_clip
from pipelines.html_report import CLIP_PATHS, HISTORIES, write_page

SMALL = ["--set", "audio.sr=8000", "--set", "audio.duration=0.5", "--no-progress"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two results folders of 36 clips (3 classes, 3 folds): softmax (classical) and a tiny cnn (a net)."""
    root = tmp_path_factory.mktemp("html")
    rows, seed = [], 0
    for label in CLASSES:
        for fold in (1, 2, 3):
            for take in range(4):
                path = f"audio/{label} {fold}-{take}.wav"  # a space: links must be URL-encoded
                write_clip(root / path, label, seed, sr=8000)
                rows.append({"path": path, "label": label, "fold": fold, "group": f"{label}{fold}{take // 2}"})
                seed += 1
    pd.DataFrame(rows).to_csv(root / "clips.csv", index=False)
    folders = {}
    for estimator, extra in (("softmax", []), ("cnn", ["--max-epochs", "2", "--params", "channels=(2, 4, 4)",
                                                       "--params", "n_hidden=8"])):
        folders[estimator] = root / "results" / estimator
        code = main(["cv", "--estimator", estimator, "--dataset", "csv", "--root", str(root / "clips.csv"),
                     "--cache", str(root / "cache"), "--output", str(folders[estimator]), *SMALL, *extra])
        assert code == 0
    return folders


def test_every_results_folder_has_its_page(runs, urbansound_root):
    page = (runs["cnn"] / "report.html").read_text()
    assert "<script src" not in page and "<link" not in page and "http://" not in page and "https://" not in page
    assert page.count("<table class='confusion'") == 1
    assert "data:image/png;base64," in page  # the net's learning curves, inline
    histories = json.loads((runs["cnn"] / HISTORIES).read_text())
    assert len(histories) == 3 and all(len(h) == 2 for h in histories)  # 3 folds x 2 epochs
    paths = pd.read_csv(runs["cnn"] / CLIP_PATHS)
    assert len(paths) == 36 and all(Path(p).is_file() for p in paths["path"])
    assert "%20" in page or "%20" in (runs["cnn"] / "report.html").read_text()
    softmax = (runs["softmax"] / "report.html").read_text()
    assert "Not available: the run saved no training history" in softmax
    assert not (runs["softmax"] / HISTORIES).exists()
    # every clip of the run is in the page's data, with a link relative to the page
    data = json.loads(re.search(r"id='data-0'>(.*?)</script>", softmax).group(1))
    assert len(data["clips"]) == 36
    src = data["clips"][0][5]
    assert not src.startswith("/") and (runs["softmax"] / unquote(src)).resolve().is_file()


def test_report_html_writes_one_page_of_all_runs(runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(runs["softmax"]), str(runs["cnn"]), "--output", str(out), "--html"]) == 0
    assert "report.html" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    assert page.count("<table class='confusion'") == 2 and page.count("<section class='run'") == 2
    assert {"comparison.csv", "comparison.md", "report.html"} <= {p.name for p in out.iterdir()}


def test_a_page_without_recorded_paths_says_so(runs, tmp_path):
    old = shutil.copytree(runs["softmax"], tmp_path / "old")
    (old / CLIP_PATHS).unlink()  # a results folder written before report.html existed
    page = write_page(tmp_path / "old.html", [(old, "old")]).read_text()
    data = json.loads(re.search(r"id='data-0'>(.*?)</script>", page).group(1))
    assert all(clip[5] is None for clip in data["clips"])


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_the_page_works_in_chromium(runs, tmp_path, capsys):
    sync_api = pytest.importorskip("playwright.sync_api")
    out = tmp_path / "report"
    assert main(["report", str(runs["softmax"]), str(runs["cnn"]), "--output", str(out), "--html"]) == 0
    capsys.readouterr()
    page_path = out / "report.html"
    errors = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            cells = page.locator("table.confusion td.cell")
            assert cells.count() >= 6  # at least the diagonals of both runs
            sources, listed = set(), 0
            for k in range(cells.count()):
                cells.nth(k).click()
                run = cells.nth(k).evaluate("cell => cell.closest('table').dataset.run")
                n = int(cells.nth(k).inner_text())
                players = page.locator(f"#clips-{run} audio")
                assert players.count() == n  # one player per clip of the cell
                listed += n
                sources |= set(players.evaluate_all("players => players.map(p => p.src)"))
            page.locator("table.confusion td.cell").first.click()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert listed == 2 * 36  # every clip of both runs, once
    assert len(sources) == 36  # both runs are of the same 36 clips
    for url in sources:
        parsed = urlparse(url)
        assert parsed.scheme == "file" and Path(unquote(parsed.path)).is_file(), url
    assert (tmp_path / "report.png").stat().st_size > 10_000
    if os.environ.get("REPORT_SCREENSHOT"):  # where to keep the screenshot, for a person to look at
        shutil.copy(tmp_path / "report.png", os.environ["REPORT_SCREENSHOT"])
