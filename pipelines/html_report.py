"""One self-contained HTML page of results to look at and listen to: ``report.html``.

The page holds the table of runs and, for each run, its per-class precision and recall, its
out-of-fold confusion matrix (a click on a cell lists the clips of that cell, each with an audio
player), its learning curves (torch nets) and its configuration and records (``run.json``, the
folds). CSS, JavaScript, data and figures are inline (the figures as PNG data URIs): nothing is
fetched from the network, and the page opens from the disk.

The audio is linked, not copied: each player's ``src`` is the clip's path relative to the page.
A data set's audio is often gigabytes, and every run of it would otherwise hold a copy; a relative
link keeps working when the results and the data set move together (as ``results/`` and
``cache/datasets/`` of a project folder do), and a player whose file is gone simply stays silent.

:func:`write_run_page` is what :func:`pipelines.results.write_run` calls: it records beside the
page what a later :func:`write_page` (``cli.py report --html``) needs and a results folder does not
otherwise keep, ``clip_paths.csv`` (each clip's audio file, absolute) and ``histories.json`` (the
nets' per-epoch training histories, one list per fold), then writes ``report.html``.
"""

import base64
import html
import json
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from pipelines import reports

PAGE = "report.html"
CLIP_PATHS = "clip_paths.csv"
HISTORIES = "histories.json"


def write_run_page(folder, *, dataset=None, histories=None):
    """Record the clip paths and histories of a results folder, and write its ``report.html``.

    Parameters
    ----------
    folder : str or os.PathLike
        A results folder whose ``run.json`` and ``predictions.csv`` are written.
    dataset : featurestore.Dataset, optional
        The run's data set: its clips' audio paths are written to ``clip_paths.csv``.
    histories : list of list of dict, optional
        Per fold, a net's per-epoch history (:class:`pipelines.evaluate.CVResult`'s ``histories``);
        written to ``histories.json`` when any fold has epochs.

    Returns
    -------
    pathlib.Path
        The page.
    """
    folder = Path(folder)
    if dataset is not None:
        dataset.clips[["clip_id", "path"]].to_csv(folder / CLIP_PATHS, index=False)
    if histories and any(histories):
        (folder / HISTORIES).write_text(json.dumps([list(h or []) for h in histories], default=_json_number))
    run = json.loads((folder / "run.json").read_text())
    return write_page(folder / PAGE, [(folder, folder.name)], title=f"{run.get('name')} on {run.get('dataset')}")


def write_page(path, runs, *, title="Comparison of runs"):
    """Write one self-contained page of the results folders ``runs``.

    Parameters
    ----------
    path : str or os.PathLike
        The page to write; audio links are relative to its folder.
    runs : list of (path-like, str)
        Results folders and their labels (:func:`pipelines.compare.find_runs` and ``run_labels``).
    title : str

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    loaded = [_load_run(Path(folder), label, path.parent) for folder, label in runs]
    table = reports.comparison_table([{**run["record"], "run": run["label"]} for run in loaded])
    body = [f"<h1>{_e(title)}</h1>",
            "<p class='note'>Scores are out-of-fold. Click a cell of a confusion matrix to list its clips and "
            "listen to them; the audio is linked by its path relative to this page.</p>",
            "<h2>Runs</h2>", _runs_table(table, loaded)]
    body += [_run_section(i, run) for i, run in enumerate(loaded)]
    path.write_text(_page(_e(title), "\n".join(body)), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- reading a results folder
def _load_run(folder, label, page_dir):
    """What the page shows of one results folder, audio paths made relative to ``page_dir``."""
    record = json.loads((folder / "run.json").read_text())
    predictions = pd.read_csv(folder / "predictions.csv", dtype={"clip_id": str, "label": str, "prediction": str})
    audio = {}
    if (folder / CLIP_PATHS).is_file():
        paths = pd.read_csv(folder / CLIP_PATHS, dtype=str)
        audio = {clip: _relative_url(p, page_dir) for clip, p in zip(paths["clip_id"], paths["path"])}
    histories = None
    if (folder / HISTORIES).is_file():
        histories = json.loads((folder / HISTORIES).read_text())
    folds = pd.read_csv(folder / "folds.csv") if (folder / "folds.csv").is_file() else None
    return {"folder": folder, "label": label, "record": record, "predictions": predictions, "audio": audio,
            "histories": histories, "folds": folds}


def _relative_url(path, page_dir):
    """``path`` as a URL relative to ``page_dir`` (an absolute file URL across drives)."""
    path = Path(path).resolve()
    try:
        relative = os.path.relpath(path, Path(page_dir).resolve())
    except ValueError:  # another drive (Windows): no relative path exists
        return path.as_uri()
    return quote(Path(relative).as_posix())


def _json_number(value):
    """JSON for the numpy and torch scalars of a skorch history."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{value!r} is not JSON-serialisable")


# --------------------------------------------------------------------------- the page's parts
def _e(text):
    return html.escape(str(text), quote=True)


def _runs_table(table, loaded):
    """The comparison table of :func:`pipelines.reports.comparison_table`, rows linking to their sections."""
    anchors = {run["label"]: f"run-{i}" for i, run in enumerate(loaded)}
    columns = [c for c in table.columns if not c.endswith("_std")]  # a score's std goes into its cell
    head = "".join(f"<th>{_e(c.replace('_', ' '))}</th>" for c in columns)
    rows = []
    for _, row in table.iterrows():
        cells = []
        for column in columns:
            value = row[column]
            if column == "run" and value in anchors:
                cells.append(f"<td><a href='#{anchors[value]}'>{_e(value)}</a></td>")
            elif column == "fit_time":
                cells.append(f"<td class='num'>{'-' if np.isnan(value) else f'{value:.1f} s'}</td>")
            elif isinstance(value, float):
                std = row.get(f"{column}_std", np.nan)
                text = "-" if np.isnan(value) else f"{value:.3f}" + ("" if np.isnan(std) else f" +/- {std:.3f}")
                cells.append(f"<td class='num'>{text}</td>")
            else:
                cells.append(f"<td>{_e(value)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table class='runs'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _run_section(index, run):
    record, predictions = run["record"], run["predictions"]
    classes = sorted(set(predictions["label"]) | set(predictions["prediction"]))
    headline = ", ".join(f"{m} {record[f'mean_{m}']:.3f} +/- {record[f'std_{m}']:.3f}"
                         for m in ("accuracy", "balanced_accuracy", "f1_macro") if f"mean_{m}" in record)
    parts = [f"<section class='run' id='run-{index}'>",
             f"<h2>{_e(run['label'])}</h2>",
             f"<p>{_e(record.get('name'))} ({_e(record.get('feature'))} features) on {_e(record.get('dataset'))}, "
             f"{len(predictions)} clips: {_e(headline)}.</p>",
             "<h3>Per class</h3>", _per_class_table(predictions, classes),
             "<h3>Confusion matrix (out-of-fold)</h3>",
             "<p class='note'>Rows: true class; columns: predicted class; shade: share of the row (recall).</p>",
             _confusion_table(index, predictions, classes),
             f"<div class='clips' id='clips-{index}' aria-live='polite'></div>",
             "<h3>Learning curves</h3>", _learning_curves(run),
             "<h3>Configuration and records</h3>", _records(run),
             _clip_data(index, predictions, classes, run["audio"]),
             "</section>"]
    return "\n".join(parts)


def _per_class_table(predictions, classes):
    table = reports.per_class_report(predictions["label"], predictions["prediction"], classes)
    rows = "".join(f"<tr><td>{_e(name)}</td><td class='num'>{row.precision:.3f}</td><td class='num'>"
                   f"{row.recall:.3f}</td><td class='num'>{row.f1:.3f}</td><td class='num'>{int(row.support)}</td></tr>"
                   for name, row in table.iterrows())
    return ("<table class='per-class'><thead><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>"
            f"<th>support</th></tr></thead><tbody>{rows}</tbody></table>")


def _confusion_table(index, predictions, classes):
    """An HTML confusion matrix whose non-empty cells list their clips when clicked (see ``_SCRIPT``)."""
    position = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(counts, (predictions["label"].map(position).to_numpy(), predictions["prediction"].map(position).to_numpy()),
              1)
    head = "".join(f"<th scope='col'>{_e(c)}</th>" for c in classes)
    rows = []
    for i, name in enumerate(classes):
        total = max(int(counts[i].sum()), 1)
        cells = []
        for j in range(len(classes)):
            n = int(counts[i, j])
            share = n / total
            colour = f"rgba({'40,110,200' if i == j else '210,70,50'},{0.08 + 0.85 * share:.3f})" if n else "#fff"
            clickable = (f" class='cell' tabindex='0' role='button' data-true='{i}' data-pred='{j}' "
                         f"title='{n} clips of {_e(name)} predicted as {_e(classes[j])}: click to list them'"
                         if n else " class='empty'")
            cells.append(f"<td{clickable} style='background:{colour}'>{n}</td>")
        rows.append(f"<tr><th scope='row'>{_e(name)}</th>{''.join(cells)}</tr>")
    return (f"<table class='confusion' data-run='{index}'><thead><tr><th>true \\ predicted</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _clip_data(index, predictions, classes, audio):
    """The clips of a run as inline JSON: ``[clip_id, true index, predicted index, fold, probability, src]``."""
    position = {c: i for i, c in enumerate(classes)}
    proba = None
    columns = [f"proba_{c}" for c in classes]
    if all(c in predictions for c in columns):
        proba = predictions[columns].to_numpy()
    clips = []
    for k, row in enumerate(predictions.itertuples(index=False)):
        p = None if proba is None else round(float(proba[k, position[row.prediction]]), 4)
        fold = getattr(row, "fold", None)
        clips.append([row.clip_id, position[row.label], position[row.prediction],
                      None if fold is None or pd.isna(fold) else int(fold), p, audio.get(row.clip_id)])
    data = json.dumps({"classes": classes, "clips": clips}, separators=(",", ":"))
    # "</" would end the script element early; "<\/" is the same string to JSON
    data = data.replace("</", "<\\/")
    return f"<script type='application/json' id='data-{index}'>{data}</script>"


def _learning_curves(run):
    """The nets' learning curves as an inline PNG: from ``histories.json``, else ``learning_curves.png``."""
    histories = run["histories"]
    if histories and any(histories):
        with tempfile.TemporaryDirectory() as tmp:
            png = reports.plot_learning_curves(histories, Path(tmp) / "curves.png", title=run["label"]).read_bytes()
    elif (run["folder"] / "learning_curves.png").is_file():
        png = (run["folder"] / "learning_curves.png").read_bytes()
    else:
        return "<p class='note'>Not available: the run saved no training history (not a torch net).</p>"
    return (f"<img class='curves' alt='learning curves of {_e(run['label'])}' "
            f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")


def _records(run):
    parts = [f"<details open><summary>run.json</summary><pre>{_e(json.dumps(run['record'], indent=2))}</pre></details>"]
    if run["folds"] is not None:
        parts.append(f"<details open><summary>folds.csv</summary>{run['folds'].to_html(index=False, border=0)}"
                     "</details>")
    return "\n".join(parts)


def _page(title, body):
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{_STYLE}</style>
</head>
<body>
{body}
<script>{_SCRIPT}</script>
</body>
</html>
"""


_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 72em; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; } h3 { margin-top: 1.4em; }
table { border-collapse: collapse; margin: .5em 0; } th, td { border: 1px solid #ddd; padding: .25em .6em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } thead th { background: #f4f4f4; }
table.confusion td { text-align: center; min-width: 2.6em; } table.confusion td.cell { cursor: pointer; }
table.confusion td.cell:hover, table.confusion td.selected { outline: 2px solid #222; }
.note { color: #666; } .clips ol { padding-left: 1.5em; } .clips li { margin: .3em 0; }
.clips audio { height: 2em; vertical-align: middle; margin-left: .8em; } img.curves { max-width: 100%; }
pre { background: #f7f7f7; padding: .6em; overflow: auto; max-height: 30em; } summary { cursor: pointer; }
"""

_SCRIPT = """
"use strict";
const runData = {};
function dataOf(run) {
  if (!(run in runData)) runData[run] = JSON.parse(document.getElementById("data-" + run).textContent);
  return runData[run];
}
function listClips(cell) {
  const table = cell.closest("table");
  const run = table.dataset.run, t = Number(cell.dataset.true), p = Number(cell.dataset.pred);
  const data = dataOf(run);
  const rows = data.clips.filter(c => c[1] === t && c[2] === p);
  table.querySelectorAll("td.selected").forEach(td => td.classList.remove("selected"));
  cell.classList.add("selected");
  const box = document.getElementById("clips-" + run);
  const heading = document.createElement("h4");
  heading.textContent = rows.length + " clip" + (rows.length === 1 ? "" : "s") + " of class " + data.classes[t] +
    " predicted as " + data.classes[p];
  const list = document.createElement("ol");
  for (const [clip, , , fold, proba, src] of rows) {
    const item = document.createElement("li");
    let text = clip + (fold === null ? "" : " (fold " + fold + ")");
    if (proba !== null) text += ", p(" + data.classes[p] + ") = " + proba.toFixed(3);
    item.append(text);
    if (src) {
      const player = document.createElement("audio");
      player.controls = true;
      player.preload = "none";
      player.setAttribute("src", src);
      item.append(player);
    } else {
      const missing = document.createElement("span");
      missing.className = "note";
      missing.textContent = " (no audio path recorded)";
      item.append(missing);
    }
    list.append(item);
  }
  box.replaceChildren(heading, list);
  box.scrollIntoView({block: "nearest"});
}
document.querySelectorAll("table.confusion td.cell").forEach(cell => {
  cell.addEventListener("click", () => listClips(cell));
  cell.addEventListener("keydown", event => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); listClips(cell); }
  });
});
"""
