"""Tests of pipelines.reports: text tables, comparison of runs, per-class scores and figures."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from pipelines import reports

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5000          # a drawn figure, not an empty canvas


@pytest.fixture
def cv_results():
    """Three parameter sets over 5 folds: the second is best; the others tie at 0.70, the third
    with the wider spread."""
    folds = np.array([[0.70, 0.72, 0.68, 0.71, 0.69],
                      [0.81, 0.83, 0.79, 0.80, 0.82],
                      [0.60, 0.90, 0.55, 0.65, 0.80]])
    df = pd.DataFrame({
        "params": [{"model__estimator__C": 1.0, "model__window": 41},
                   {"model__estimator__C": 10.0, "model__window": 21},
                   {"model__estimator__C": 0.1, "model__window": 41}],
        "mean_accuracy": folds.mean(axis=1),
        "std_accuracy": folds.std(axis=1),
        "fit_time": [1.0, 2.0, 3.0],
    })
    for k in range(5):
        df[f"fold{k + 1}_accuracy"] = folds[:, k]
        df[f"fold{k + 1}_f1_macro"] = folds[:, k] - 0.05
    return df


@pytest.fixture
def runs():
    return [
        {"name": "svm", "estimator": "svm", "feature": "mfcc", "dataset": "demo",
         "mean_accuracy": 0.71, "std_accuracy": 0.04, "mean_balanced_accuracy": 0.69,
         "std_balanced_accuracy": 0.05, "mean_f1_macro": 0.68, "std_f1_macro": 0.05, "fit_time": 3.2},
        {"name": "piczak", "estimator": "piczak", "feature": "mel", "dataset": "demo",
         "mean_accuracy": 0.83, "std_accuracy": 0.03, "mean_balanced_accuracy": 0.80,
         "std_balanced_accuracy": 0.04, "mean_f1_macro": 0.79, "std_f1_macro": 0.03, "fit_time": 120.5,
         "mean_window_accuracy": 0.74, "std_window_accuracy": 0.02},
        {"estimator": "random_forest", "feature": "stacked", "mean_accuracy": 0.65, "std_accuracy": 0.06},
    ]


# --------------------------------------------------------------------------- cv tables
def test_cv_table_frame_is_sorted_and_ranked(cv_results):
    table = reports.cv_table_frame(cv_results)
    assert table["rank"].tolist() == [1, 2, 2]                      # a tie shares its rank ...
    assert table["params"][0] == {"model__estimator__C": 10.0, "model__window": 21}
    assert table["params"][1]["model__estimator__C"] == 1.0         # ... lower spread first
    assert list(table.columns) == ["rank", "params", "mean", "std", *(f"fold{k}" for k in range(1, 6))]
    np.testing.assert_allclose(table.loc[0, [f"fold{k}" for k in range(1, 6)]].to_numpy(dtype=float),
                               [0.81, 0.83, 0.79, 0.80, 0.82])


def test_format_cv_table_best_first_with_fold_scores(cv_results):
    text = reports.format_cv_table(cv_results)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["rank", "parameters", "(model__...)"]
    assert "fold5" in lines[0] and "fold6" not in lines[0]
    best = lines[2]
    assert best.split()[:3] == ["1", "estimator__C=10,", "window=21"]
    assert "0.810 +/- 0.014" in best
    assert best.split()[-5:] == ["0.810", "0.830", "0.790", "0.800", "0.820"]
    assert lines[3].split()[:6] == ["2", "estimator__C=1,", "window=41", "0.700", "+/-", "0.014"]
    assert lines[4].split()[:6] == ["2", "estimator__C=0.1,", "window=41", "0.700", "+/-", "0.130"]
    assert len({len(line) for line in lines[:2]}) == 1        # header and rule line up


def test_format_cv_table_other_metric_and_fold_order(cv_results):
    df = cv_results.assign(mean_f1_macro=[0.9, 0.1, 0.5], std_f1_macro=0.0)
    df["fold10_f1_macro"] = 0.123                                  # numeric, not string, fold order
    text = reports.format_cv_table(df, metric="f1_macro")
    header = text.splitlines()[0].split()
    assert header[-6:] == ["fold1", "fold2", "fold3", "fold4", "fold5", "fold10"]
    assert text.splitlines()[2].split()[1] == "estimator__C=1,"


def test_format_cv_table_accepts_sklearn_cv_results():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), np.repeat([0, 1], 15)
    X[y == 1] += 1.0
    search = GridSearchCV(LogisticRegression(), {"C": [0.01, 1.0]}, cv=3, scoring="accuracy").fit(X, y)
    text = reports.format_cv_table(pd.DataFrame(search.cv_results_), metric="score")
    assert "fold3" in text.splitlines()[0] and "fold4" not in text
    assert text.splitlines()[2].split()[1] == f"C={search.best_params_['C']:g}"


def test_format_cv_table_names_missing_metric(cv_results):
    with pytest.raises(ValueError, match="metric='roc_auc'.*accuracy"):
        reports.format_cv_table(cv_results, metric="roc_auc")


# --------------------------------------------------------------------------- comparison
def test_comparison_table_sorted_by_accuracy(runs):
    df = reports.comparison_table(runs)
    assert df["model"].tolist() == ["piczak", "svm", "random_forest"]
    assert df["accuracy"].is_monotonic_decreasing
    assert df.loc[0, "window_accuracy"] == 0.74
    assert "clip_accuracy" not in df                              # no run has it
    assert np.isnan(df.loc[2, "balanced_accuracy"]) and np.isnan(df.loc[2, "fit_time"])


def test_format_comparison(runs):
    text = reports.format_comparison(reports.comparison_table(runs))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["#", "model", "feature"] and "dataset" not in lines[0]
    assert lines[2].split()[:3] == ["1", "piczak", "mel"]
    assert "0.830 +/- 0.030" in lines[2] and lines[2].endswith("120.5")
    assert lines[4].split()[:3] == ["3", "random_forest", "stacked"]
    assert lines[4].split()[-1] == "-"                             # missing fit time


def test_comparison_table_needs_a_name(runs):
    with pytest.raises(ValueError, match=r"runs\[1\]"):
        reports.comparison_table([runs[0], {"mean_accuracy": 0.5}])


@pytest.fixture
def two_data_sets(runs):
    """The runs on demo, two runs on esc50 (one better than every demo run) labelled by folder."""
    esc = [{"name": "svm", "feature": "mfcc", "dataset": "esc50", "mean_accuracy": 0.95, "std_accuracy": 0.01},
           {"name": "svm", "feature": "mfcc", "dataset": "esc50", "mean_accuracy": 0.60, "std_accuracy": 0.02}]
    labelled = [{**run, "run": f"run-{i}"} for i, run in enumerate(runs[:2] + esc)]
    return reports.comparison_table(labelled)


def test_comparison_table_groups_by_data_set(two_data_sets):
    df = two_data_sets
    assert df["dataset"].tolist() == ["demo", "demo", "esc50", "esc50"]
    assert df["run"].tolist() == ["run-1", "run-0", "run-2", "run-3"]   # best first within each data set


def test_format_comparison_ranks_each_data_set_apart(two_data_sets):
    text = reports.format_comparison(two_data_sets)
    demo, esc = text.split("\n\n")
    assert demo.startswith("data set demo:\n#") and esc.startswith("data set esc50:\n#")
    assert esc.splitlines()[3].split()[:3] == ["1", "run-2", "svm"]   # ranked 1 on esc50 only
    assert esc.splitlines()[4].split()[:3] == ["2", "run-3", "svm"]


def test_comparison_markdown(two_data_sets):
    text = reports.comparison_markdown(two_data_sets, "Demo")
    assert text.startswith("# Demo\n\n## Data set demo\n\n| # | run | model | feature | accuracy |")
    assert "| 1 | run-2 | svm | mfcc | 0.950 +/- 0.010 | - | - | - |" in text
    assert text.index("## Data set esc50") > text.index("| run-0 |")


def test_plot_comparison_names_runs(tmp_path, two_data_sets):
    assert_png(reports.plot_comparison(two_data_sets, tmp_path / "runs.png"))


# --------------------------------------------------------------------------- per-class scores
def test_per_class_report_by_hand():
    y_true = ["cat", "cat", "cat", "dog", "dog", "bird"]
    y_pred = ["cat", "cat", "dog", "dog", "cat", "cat"]
    report = reports.per_class_report(y_true, y_pred, ["cat", "dog", "bird"])
    assert report.index.tolist() == ["cat", "dog", "bird"]
    # cat: 2 of 4 "cat" predictions right, 2 of 3 cats found
    assert report.loc["cat", "precision"] == pytest.approx(2 / 4)
    assert report.loc["cat", "recall"] == pytest.approx(2 / 3)
    assert report.loc["cat", "f1"] == pytest.approx(2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3))
    assert report.loc["dog"].tolist() == pytest.approx([0.5, 0.5, 0.5, 2])
    assert report.loc["bird"].tolist() == [0.0, 0.0, 0.0, 1]      # never predicted: 0, no warning
    assert report["support"].dtype.kind == "i"


# --------------------------------------------------------------------------- figures
def test_plot_confusion_matrix(tmp_path):
    rng = np.random.default_rng(0)
    labels = [f"class_{i}_with_a_long_name" for i in range(10)]
    y_true = rng.choice(labels, 200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.choice(labels, 200))
    path = reports.plot_confusion_matrix(y_true, y_pred, labels, tmp_path / "sub" / "cm.png", title="t")
    assert path == tmp_path / "sub" / "cm.png"
    assert_png(path)
    assert_png(reports.plot_confusion_matrix(y_true, y_pred, None, tmp_path / "counts.png", normalize=False))


def skorch_like_history(n_epochs, seed, *, valid=True):
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(1, n_epochs + 1):
        row = {"epoch": epoch, "train_loss": 2 / epoch + 0.1 * rng.random(), "dur": 0.1, "batches": []}
        if valid:
            row.update(valid_loss=1.5 / epoch + 0.02 * epoch, valid_acc=min(1.0, 0.3 + 0.1 * epoch))
        history.append(row)
    return history


def test_plot_learning_curves(tmp_path):
    histories = [skorch_like_history(8, fold) for fold in range(5)]
    assert_png(reports.plot_learning_curves(histories, tmp_path / "lc.png", title="cnn"))
    # train loss only, an empty fold (not a net) skipped, a single history
    no_valid = [skorch_like_history(4, 0, valid=False), [], skorch_like_history(4, 1, valid=False)]
    assert_png(reports.plot_learning_curves(no_valid, tmp_path / "train_only.png"))
    assert_png(reports.plot_learning_curves(skorch_like_history(3, 0), tmp_path / "single.png"))
    with pytest.raises(ValueError, match="no epochs"):
        reports.plot_learning_curves([[], []], tmp_path / "none.png")


def test_plot_comparison(tmp_path, runs):
    assert_png(reports.plot_comparison(reports.comparison_table(runs), tmp_path / "cmp.png", title="demo"))


# --------------------------------------------------------------------------- markdown
def test_summary_markdown(runs):
    table = reports.per_class_report(["a", "b"], ["a", "a"], ["a", "b"])
    text = reports.summary_markdown("svm on demo", {
        "Result": "accuracy 0.900 +/- 0.050",
        "Per class": table,
        "Figures": "![confusion matrix](confusion_matrix.png)",
    })
    assert text.startswith("# svm on demo\n\n## Result\n\naccuracy 0.900 +/- 0.050\n\n## Per class\n")
    assert "| class | precision | recall | f1 | support |" in text
    assert "| a | 0.500 | 1.000 | 0.667 | 1 |" in text
    assert text.endswith("![confusion matrix](confusion_matrix.png)\n")
