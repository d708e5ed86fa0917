"""Experiments as the command line runs them: features from the store, cross-validation on the data
set's folds, and a results folder with tables, figures, the refitted model and a summary.

A results folder holds ``run.json`` (headline scores, read by ``report``), ``cv_results.csv``,
``best_params.json``, ``folds.csv``, ``predictions.csv`` (out-of-fold), ``per_class.csv``,
``confusion_matrix.png``, ``learning_curves.png`` (torch nets), ``skipped.csv`` (the clips left out:
missing or unusable audio, with the reason), ``model.joblib`` and ``summary.md``.

A results folder is created atomically and never shared: two runs started in the same second get
``...-<time>`` and ``...-<time>-2``; an explicit ``output`` must be new or an empty folder.

Augmented copies (``--set augment.copies=2 --set augment.pitch_shift=2``, see :func:`augment_settings`)
are extracted into the store after the main features and given to every pipeline, whose ``fit`` adds
the copies of its training clips (``augment_copies``, a parameter a grid can tune). Test folds,
out-of-fold predictions and scores hold the original clips only.
"""

import itertools
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import joblib
import pandas as pd
from sklearn.base import clone

import estimators
from featurestore import extract as extract_features
from featurestore import extract_augmented, features
from featurestore.audio import AUDIO_DEFAULTS
from featurestore.augment import AUGMENT_SETTINGS, augment_settings
from featurestore.errors import ParameterError
from featurestore.extraction import resolve_audio_params
from featurestore.features._common import check_int
from pipelines import reports
from pipelines.build import (clips_in, feature_params_for, make_ensemble, make_pipeline, pipeline_params,
                             set_run_settings)
from pipelines.evaluate import METRICS, _fit_params, cross_validate, grid_search, nested_grid_search
from pipelines.splits import ClipSplitter


class ResultsFolderError(Exception):
    """A results folder cannot be written (an ``--output`` that holds files) or read (no ``run.json``)."""


def new_folder(parent, stem):
    """Create ``parent/stem``, or ``stem-2``, ``stem-3``... if taken, and return it.

    ``mkdir`` without ``exist_ok`` either creates the folder or fails: the creation is atomic, so
    two runs (threads or processes) never get the same folder.

    Returns
    -------
    pathlib.Path
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        folder = parent / (stem if n == 1 else f"{stem}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder


def check_output(output):
    """Raise :class:`ResultsFolderError` if ``output`` exists and is not an empty folder.

    Called before a run starts, so that a taken ``--output`` fails in a second, not after the training.
    """
    path = Path(output)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ResultsFolderError(f"--output {path} exists and is not empty: results are never written over "
                                 "another run's; choose a new folder")


def output_folder(output):
    """Create the explicit results folder ``output`` (an existing empty folder is used) and return it."""
    path = Path(output)
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        check_output(path)  # another run may have written it since this one started
    return path


def timestamp():
    """Local time to the second, as used in results folder names: ``20260105-142501``."""
    return datetime.now().strftime("%Y%m%d-%H%M%S")


#: Layouts that read any folder or manifest: their data sets are named after that root.
ROOT_NAMED_LAYOUTS = ("csv", "folder")


def dataset_label(dataset):
    """The name a data set goes by in results folder names, titles and ``run.json``'s ``dataset``.

    A published data set's registry name (``urbansound8k``); for the layouts of
    :data:`ROOT_NAMED_LAYOUTS`, the name of the root: ``birds`` for ``--root birds.csv`` or ``birds/``
    (``run.json`` records the layout itself as ``layout``).
    """
    if dataset.name not in ROOT_NAMED_LAYOUTS:
        return dataset.name
    return dataset.root.stem if dataset.root.is_file() else dataset.root.name


def describe_audio(audio, overrides=None):
    """One line of the audio settings of a run, marking those set with ``--set audio.*``.

    >>> describe_audio({"sr": 8000, "duration": 0.5, "pad_mode": "zero", "normalize": False}, {"sr": 8000})
    'sr=8000 Hz (--set), duration=0.5 s, pad_mode=zero, normalize=False'
    """
    units = {"sr": " Hz", "duration": " s"}
    order = [*(k for k in AUDIO_DEFAULTS if k in audio), *sorted(set(audio) - set(AUDIO_DEFAULTS))]
    return ", ".join(f"{k}={audio[k]}{units.get(k, '')}{' (--set)' if k in (overrides or {}) else ''}"
                     for k in order)


def skipped_clips(dataset, feature_sets):
    """The clips a run left out: rows of missing audio, and clips whose audio or features were unusable.

    Parameters
    ----------
    dataset : featurestore.Dataset
    feature_sets : list of featurestore.FeatureSet

    Returns
    -------
    pandas.DataFrame
        Columns ``clip_id``, ``path``, ``reason``; one row per clip (the first reason when several
        feature sets skipped it).
    """
    rows = [*dataset.skipped, *(row for fs in feature_sets for row in fs.skipped)]
    table = pd.DataFrame([{k: row.get(k) for k in ("clip_id", "path", "reason")} for row in rows],
                         columns=["clip_id", "path", "reason"])
    return table.drop_duplicates("clip_id", ignore_index=True)


class Experiment:
    """Runs ``grid``, ``cv`` and ``ensemble`` on one data set and writes their results folders.

    Parameters
    ----------
    dataset : featurestore.Dataset
    store : featurestore.FeatureStore
    settings : dict
        ``{kind or "audio": {param: value}}`` overrides from ``--set``, and ``{"augment": {...}}``
        for stored augmented copies (see :func:`augment_settings`).
    folds : list of int, optional
        Test folds to run (default all).
    n_jobs : int
        Parallel fits (and extraction workers).
    n_threads : int, optional
        Torch threads per fit (default: this machine's cores divided by ``n_jobs``).
    backend : str, optional
        joblib backend of extraction (default threads); ``"dask"`` inside
        :func:`pipelines.cluster.session`, whose joblib setting also sends the fits to the cluster.
    seed : int
        ``random_state`` of every model that has one, and of k-fold splits.
    device : str, optional
        Torch device for nets (``auto``, ``cpu``, ``cuda``).
    max_epochs : int, optional
        Epoch limit for nets.
    skip_bad : bool
        Skip unusable audio files at extraction.
    progress : bool
    output : str, optional
        Results folder (default ``results/<command>-<name>-<dataset>-<time>``).
    """

    def __init__(self, dataset, store, *, settings=None, folds=None, n_jobs=1, n_threads=None, backend=None,
                 seed=0, device=None, max_epochs=None, skip_bad=False, progress=True, output=None):
        self.dataset = dataset
        self.store = store
        self.settings = settings or {}
        self.folds = folds
        self.n_jobs = n_jobs
        self.n_threads = n_threads
        self.backend = backend
        self.seed = seed
        self.device = device
        self.max_epochs = max_epochs
        self.skip_bad = skip_bad
        self.progress = progress
        self.output = output

    # ------------------------------------------------------------------ building blocks
    def _pipeline(self, name, kind=None, params=None, segments=None, vote="mean"):
        """Pipeline of estimator ``name`` with validated parameters, and its feature kind/params.

        The feature set is not extracted yet: every parameter is checked first.
        """
        kind = kind or estimators.get_spec(name).feature
        kind, feature_params = feature_params_for(name, kind, self.settings.get(kind))
        features.resolve_params(kind, feature_params)  # unknown feature parameter: fail now
        # parallel fits share the cores: torch must not start a thread per core in each
        n_threads = self.n_threads or max(1, (os.cpu_count() or 1) // max(1, self.n_jobs))
        settings = {"random_state": self.seed, "device": self.device, "max_epochs": self.max_epochs,
                    "n_threads": n_threads}  # each reaches the estimators that declare it
        pipeline = make_pipeline(name, None, segment_window=segments, vote=vote, run_settings=settings)
        pipeline.set_params(**self._user_params(pipeline, params or {}, name))
        return pipeline, kind, feature_params

    def _check_settings(self, kinds):
        stray = set(self.settings) - set(kinds) - {"audio", "augment"}
        if stray:
            raise ParameterError(f"--set names feature kind {sorted(stray)[0]!r}, which this run does not use "
                             f"(it uses {', '.join(sorted(set(kinds)))})")

    def _augment(self, params=None):
        """The augmented copies of ``--set augment.*`` (None without), checked with the ``augment_copies``
        values of ``params`` (a grid or a parameter dict) before anything is extracted or trained."""
        augment = augment_settings(self.settings.get("augment"), seed=self.seed)
        stored = augment["copies"] if augment else 0
        for grid in params if isinstance(params, list) else [params or {}]:
            values = grid.get("augment_copies", [])
            for copies in values if isinstance(values, list) else [values]:
                if copies is None:
                    continue
                if isinstance(copies, bool) or not isinstance(copies, int) or copies < 0:
                    raise ParameterError(f"augment_copies={copies!r} must be an integer >= 0 (or None: all copies)")
                if copies > stored:
                    hint = (f"--set augment.copies={stored}" if augment else
                            "none are set (e.g. --set augment.copies=2 --set augment.pitch_shift=2)")
                    raise ParameterError(f"augment_copies={copies} is more than the stored copies per clip: {hint}")
        return augment

    def _feature_set(self, kind, params):
        return extract_features(self.dataset, {kind: params}, store=self.store, audio=self.settings.get("audio"),
                                n_jobs=self.n_jobs, skip_bad=self.skip_bad, backend=self.backend or "threading",
                                progress=self.progress)[kind]

    def _use_sets(self, pipeline, kind, params, augment):
        """Extract the feature set (then its augmented copies) and point ``pipeline`` at them; the main set."""
        fs = self._feature_set(kind, params)
        copies = None
        if augment:
            copies = extract_augmented(self.dataset, {kind: params}, augment["augmentation"], copies=augment["copies"],
                                       seed=augment["seed"], store=self.store, audio=self.settings.get("audio"),
                                       n_jobs=self.n_jobs, skip_bad=self.skip_bad,
                                       backend=self.backend or "threading", progress=self.progress)[kind]
        pipeline.set_params(features__feature_set=str(fs.path),
                            features__augmented_set=None if copies is None else str(copies.path))
        set_run_settings(pipeline, sr=fs.audio["sr"])
        return fs

    def _splitter(self, clips):
        return ClipSplitter(clips, folds=self.folds, random_state=self.seed)

    def _check_output(self):
        if self.output:
            check_output(self.output)

    def _folder(self, command, name):
        if self.output:
            return output_folder(self.output)
        return new_folder("results", f"{command}-{name}-{dataset_label(self.dataset)}-{timestamp()}")

    def _announce_audio(self):
        """Validate the audio settings of ``--set audio.*`` and print them, once per run, before extracting."""
        overrides = self.settings.get("audio")
        audio = resolve_audio_params(self.dataset, overrides)
        print(f"audio of {dataset_label(self.dataset)}: {describe_audio(audio, overrides)}", flush=True)

    @staticmethod
    def _user_params(pipeline, params, name):
        """:func:`~pipelines.build.pipeline_params` of the names a user typed; an unknown one is a
        :class:`ParameterError` (one line, not a traceback)."""
        try:
            return pipeline_params(pipeline, params, name)
        except ValueError as exc:
            raise ParameterError(str(exc)) from exc

    def _release_workers(self):
        """Shut down joblib's process workers once a cross-validation is done.

        loky, joblib's process pool, restarts a worker whose memory grew by 300 MB since its first
        task, and warns "A worker stopped while some jobs were given to the executor ... memory
        leak". Workers are reused across runs, so those of an SVM (no torch) would trip it as soon as
        a later run imports torch in them (about 380 MB): every demo printed the warning. Fresh
        workers for each run measure from their own first task; they also free their memory
        before the refit.
        """
        if self.n_jobs != 1 and self.backend != "dask":
            from joblib.externals.loky import get_reusable_executor

            get_reusable_executor(reuse=True).shutdown(wait=True)

    def _refit(self, label, model, clips):
        """Fit ``model`` on all clips, saying so: after the progress bar ends this can take minutes."""
        print(f"refitting {label} on all {len(clips)} clips ...", flush=True)
        start = time.perf_counter()
        X, y = clips["clip_id"].to_numpy(dtype=str), clips["label"].to_numpy()
        model.fit(X, y, **_fit_params(model, clips["group"].to_numpy()))
        print(f"refitted {label} in {time.perf_counter() - start:.1f} s", flush=True)
        return model

    def _search(self, command, name, kind, grid, *, scoring="accuracy", segments=None, vote="mean", search=None,
                inner_splits=None):
        """Cross-validate every candidate of ``grid``, refit the best on all clips, write the results folder.

        ``search`` is a grid's: "nested" (:func:`~pipelines.evaluate.nested_grid_search`, at most
        ``inner_splits`` inner splits) or "flat"; None for ``cv``'s one candidate.

        Returns
        -------
        folder : pathlib.Path
        cv_results : pandas.DataFrame
        result : CVResult
            The best candidate's; a nested search's outer-fold scores of what each fold selected.
        """
        start = time.perf_counter()
        self._check_output()
        pipeline, kind, feature_params = self._pipeline(name, kind, segments=segments, vote=vote)
        self._check_settings([kind])
        grid = self._user_params(pipeline, grid, name)
        augment = self._augment(grid)
        self._announce_audio()
        fs = self._use_sets(pipeline, kind, feature_params, augment)
        clips = clips_in(self.dataset, fs)
        nested = None
        if search == "nested":
            nested = nested_grid_search(pipeline, grid, clips, splitter=self._splitter(clips), scoring=scoring,
                                        inner_splits=inner_splits, n_jobs=self.n_jobs, refit=False,
                                        progress=self.progress, desc=f"{command} (nested)")
            cv_results, result = nested.cv_results, nested.result
            best_params = nested.flat[nested.best_index].params
        else:
            cv_results, results, best, _ = grid_search(pipeline, grid, clips, splitter=self._splitter(clips),
                                                       scoring=scoring, n_jobs=self.n_jobs, refit=False,
                                                       progress=self.progress, desc=command)
            result, best_params = results[best], results[best].params
        self._release_workers()
        print(reports.format_cv_table(cv_results, metric=scoring, label=reports.FLAT_LABEL if search else None))
        if nested is not None:
            print("\n" + reports.format_selection_table(nested.selected_params(), scoring))
        # the saved model: the flat best over all folds, refitted on all clips (also after a nested search)
        model = self._refit(name, clone(pipeline).set_params(**best_params), clips)
        folder = self._folder(command, name)
        write_run(folder, name=name, estimator=name, kind=kind, result=result, model=model,
                  cv_results=cv_results, feature_set=fs, dataset=self.dataset, wall_time=time.perf_counter() - start,
                  scoring=scoring, augment=augment, skipped=skipped_clips(self.dataset, [fs]), search=search,
                  nested=nested)
        return folder, cv_results, result

    # ------------------------------------------------------------------ commands
    def grid(self, name, *, kind=None, param_grid=None, scoring="accuracy", segments=None, vote="mean",
             search="nested", inner_splits=None):
        """Grid search of estimator ``name`` (its registry grid by default); returns the results folder.

        ``search="nested"`` (default) selects the parameters inside each outer training set and reports
        the outer-fold scores of what was selected (:func:`~pipelines.evaluate.nested_grid_search`,
        ``inner_splits`` caps its inner splits); ``"flat"`` reports the best mean over the folds it
        selects on, labelled optimistic. Either way the saved model is the flat best, refitted on all clips.
        """
        if search not in ("nested", "flat"):
            raise ParameterError(f"search={search!r} must be 'nested' or 'flat'")
        if check_int("inner_splits", inner_splits, allow_none=True) is not None and search == "flat":
            raise ParameterError(f"inner_splits={inner_splits} applies to a nested search only, not search='flat'")
        grid = param_grid if param_grid is not None else estimators.get_spec(name).param_grid
        folder, _, result = self._search("grid", name, kind, grid, scoring=scoring, segments=segments, vote=vote,
                                         search=search, inner_splits=inner_splits)
        print(f"{search} {scoring}: {result.mean(scoring):.3f} +/- {result.std(scoring):.3f}"
              f"{' (optimistic)' if search == 'flat' else ''}; results in {folder}")
        return folder

    def cv(self, name, *, kind=None, params=None, segments=None, vote="mean"):
        """Cross-validate one configuration of ``name``: a search over the one candidate ``params``.

        Returns the results folder, whose ``run.json``, ``best_params.json`` and ``summary.md`` record
        ``params`` as set on the pipeline.
        """
        grid = {key: [value] for key, value in (params or {}).items()}
        folder, _, result = self._search("cv", name, kind, grid, segments=segments, vote=vote)
        print(f"accuracy {result.mean('accuracy'):.3f} +/- {result.std('accuracy'):.3f}; results in {folder}")
        return folder

    def ensemble(self, names, *, method="soft"):
        """Cross-validate a voting or stacking ensemble of ``names``; returns the results folder."""
        if len(names) < 2:
            raise ParameterError(f"an ensemble needs at least two estimators, not {names}")
        start = time.perf_counter()
        self._check_output()
        built = [self._pipeline(name) for name in names]
        self._check_settings([kind for _, kind, _ in built])
        augment = self._augment()
        self._announce_audio()
        members, sets = [], []
        for name, (pipeline, kind, feature_params) in zip(names, built):
            fs = self._use_sets(pipeline, kind, feature_params, augment)
            members.append((name, pipeline))
            sets.append(fs)
        clips = clips_in(self.dataset, *sets)
        model = make_ensemble(members, method, clips)
        result = cross_validate(model, clips, splitter=self._splitter(clips), n_jobs=self.n_jobs,
                                progress=self.progress)
        self._release_workers()
        label = f"{method}-{'+'.join(names)}"
        model = self._refit(label, model, clips)
        folder = self._folder("ensemble", label)
        write_run(folder, name=label, estimator=label, kind="+".join(fs.kind for fs in sets), result=result,
                  model=model, cv_results=None, feature_set=sets[0], dataset=self.dataset,
                  wall_time=time.perf_counter() - start, augment=augment, skipped=skipped_clips(self.dataset, sets))
        print(f"{label}: accuracy {result.mean('accuracy'):.3f} +/- {result.std('accuracy'):.3f}; results in {folder}")
        return folder


def write_run(folder, *, name, estimator, kind, result, model, cv_results, feature_set, dataset, wall_time,
              scoring="accuracy", augment=None, skipped=None, search=None, nested=None):
    """Write a results folder (see the module docstring).

    ``augment`` (from :func:`augment_settings`) is recorded as ``augmentation`` in ``run.json``
    (``copies``, ``seed`` and the bounds; null without) and described in ``summary.md``.
    ``skipped`` (from :func:`skipped_clips`; none when omitted) is written to ``skipped.csv``, counted
    as ``n_skipped`` in ``run.json`` and stated in ``summary.md``, so that a score says what it was
    computed on. A grid's ``search`` ("nested" or "flat") is recorded as ``nested: true/false``; a nested
    search (:class:`~pipelines.evaluate.NestedResult`) adds ``selected_params`` per outer fold, and its
    ``result`` holds the outer-fold scores of what was selected (the headline ``mean_<metric>``).
    """
    folder = Path(folder)
    data = dataset_label(dataset)
    if skipped is None:
        skipped = skipped_clips(dataset, [])
    skipped.to_csv(folder / "skipped.csv", index=False)
    labels = sorted(result.predictions["label"].unique())
    if cv_results is not None:
        table = cv_results.copy()
        table["params"] = table["params"].map(lambda p: json.dumps(p, default=str))
        table.to_csv(folder / "cv_results.csv", index=False)
    (folder / "best_params.json").write_text(json.dumps(result.params, indent=2, default=str))
    folds = result.folds.copy()
    if "params" in folds:  # a nested search's selected parameters, one dict per fold
        folds["params"] = folds["params"].map(lambda p: json.dumps(p, default=str))
    folds.to_csv(folder / "folds.csv", index=False)
    result.predictions.to_csv(folder / "predictions.csv", index=False)
    per_class = reports.per_class_report(result.predictions["label"], result.predictions["prediction"], labels)
    per_class.to_csv(folder / "per_class.csv")
    reports.plot_confusion_matrix(result.predictions["label"], result.predictions["prediction"], labels,
                                  folder / "confusion_matrix.png", title=f"{name} on {data} (out-of-fold)")
    figures = ["confusion_matrix.png"]
    if any(result.histories):
        reports.plot_learning_curves(result.histories, folder / "learning_curves.png", title=name)
        figures.append("learning_curves.png")
    _save_model(folder / "model.joblib", {"model": model, "audio": feature_set.audio, "estimator": estimator,
                                          "feature": kind, "dataset": data, "classes": labels})
    augmentation = None
    if augment:
        augmentation = {"copies": augment["copies"], "seed": augment["seed"], **augment["augmentation"].params()}
    run = {"name": name, "estimator": estimator, "feature": kind, "dataset": data, "layout": dataset.name,
           "audio": feature_set.audio,
           "n_clips": int(len(result.predictions)), "folds": [int(f) for f in result.folds["fold"]],
           "n_skipped": len(skipped), "params": result.params, "augmentation": augmentation, "wall_time": wall_time,
           **result.summary()}
    if search is not None:
        run["nested"] = search == "nested"
    if nested is not None:
        run["selected_params"] = nested.selected_params()
    (folder / "run.json").write_text(json.dumps(run, indent=2, default=str))
    headline = ", ".join(f"{m} {run[f'mean_{m}']:.3f} +/- {run[f'std_{m}']:.3f}" for m in METRICS)
    sections = {
        "Result": f"{name} ({kind} features) on {data}, {len(result.folds)} test folds: {headline}.",
        "Clips": _describe_clips(run["n_clips"], skipped),
        "Audio": describe_audio(feature_set.audio),
        "Best parameters": f"`{json.dumps(result.params, default=str)}`",
        "Augmentation": _describe_augmentation(augmentation, result.params),
        "Per fold": "```\n" + result.folds.drop(columns="params", errors="ignore").to_string(index=False) + "\n```",
        "Per class": "```\n" + per_class.to_string() + "\n```",
        "Figures": "\n".join(f"![{f}]({f})" for f in figures),
    }
    if augmentation is None:
        del sections["Augmentation"]
    if search is not None:  # a grid: which score the headline is; where the saved model's parameters come from
        label = reports.NESTED_LABEL if search == "nested" else reports.FLAT_LABEL
        sections["Result"] = f"Grid search, {label}. " + sections["Result"]
        if nested is not None:
            sections["Result"] += ("\n\n```\n" + reports.format_selection_table(nested.selected_params(), scoring)
                                   + "\n```")
        sections["Best parameters"] = ("The saved model's, selected by the flat search over all folds and "
                                       f"refitted on all clips: {sections['Best parameters']}")
    if cv_results is not None:
        label = reports.FLAT_LABEL if search is not None else None
        text = reports.format_cv_table(cv_results, metric=scoring, label=label)
        sections["Parameter sets"] = "```\n" + text + "\n```"
    (folder / "summary.md").write_text(reports.summary_markdown(f"{name} on {data}", sections))
    return run


def _save_model(path, bundle):
    """``joblib.dump`` of ``bundle``, saying so: a large ensemble takes a while to write."""
    print(f"saving the model to {path} ...", flush=True)
    start = time.perf_counter()
    joblib.dump(bundle, path)
    print(f"saved {path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s", flush=True)


def _describe_clips(n_clips, skipped):
    if len(skipped) == 0:
        return f"Scores are computed on {n_clips} clips; none was skipped."
    reasons = ", ".join(f"{count} {reason}" for reason, count in skipped["reason"].value_counts().items())
    return (f"Scores are computed on {n_clips} clips; {len(skipped)} clips were skipped ({reasons}) and are "
            "listed in [skipped.csv](skipped.csv).")


def _describe_augmentation(augmentation, params):
    if augmentation is None:
        return ""
    bounds = {k: v for k, v in augmentation.items() if k not in AUGMENT_SETTINGS and v not in (0.0, None)}
    used = params.get("augment_copies", augmentation["copies"])
    used = augmentation["copies"] if used is None else used
    return (f"{augmentation['copies']} stored augmented copies per clip (seed {augmentation['seed']}; "
            f"{', '.join(f'{k}={v:g}' for k, v in bounds.items())}); these results train on {used} per "
            "training clip. Copies are added inside each fit to the training folds only: test folds, "
            "out-of-fold predictions and scores use the original clips.")


def find_runs(paths):
    """The results folders among ``paths``, as a shell glob (``results/*``) gives them.

    A results folder (one with ``run.json``) stands for itself; a folder of results folders (a demo's)
    stands for the runs in it; anything else is left out with a note.

    Returns
    -------
    runs : list of (pathlib.Path, int)
        Each folder, once, and how many trailing parts of its path name it at least (2 for a run
        inside a demo folder: ``demo-20260105-142501/svm``).
    notes : list of str
        One line per path left out, saying why.
    """
    runs, notes, seen = [], [], set()
    for path in map(Path, paths):
        if (path / "run.json").is_file():
            found = [(path, 1)]
        elif path.is_dir():
            found = [(run.parent, 2) for run in sorted(path.glob("*/run.json"))]
            if not found:
                notes.append(f"skipped {path}: a folder without run.json and without results folders in it")
        else:
            found = []
            notes.append(f"skipped {path}: {'not a folder' if path.exists() else 'does not exist'}")
        for folder, depth in found:
            if folder.resolve() not in seen:
                seen.add(folder.resolve())
                runs.append((folder, depth))
    return runs, notes


def run_labels(runs):
    """Labels telling the runs of :func:`find_runs` apart: the last parts of their paths, as few as can.

    >>> run_labels([(Path("results/demo-1/svm"), 2), (Path("results/cv-svm-demo-1"), 1)])
    ['demo-1/svm', 'cv-svm-demo-1']
    >>> run_labels([(Path("a/run"), 1), (Path("b/run"), 1), (Path("c/other"), 1)])
    ['a/run', 'b/run', 'other']
    """
    parts = [folder.resolve().parts for folder, _ in runs]
    depths = [depth for _, depth in runs]
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depths)]
        clashing = [i for i, label in enumerate(labels) if labels.count(label) > 1 and depths[i] < len(parts[i])]
        if not clashing:  # folders are distinct, so their full paths never clash
            return labels
        for i in clashing:
            depths[i] += 1


def read_runs(paths):
    """The ``run.json`` of every run of :func:`find_runs`, with its label as ``run``; notes on stderr."""
    runs, notes = find_runs(paths)
    for note in notes:
        print(note, file=sys.stderr)
    if not runs:
        raise ResultsFolderError(f"no results folder among {', '.join(map(str, paths))}: a results folder holds "
                                 "run.json, a demo folder holds results folders")
    records = []
    for (folder, _), label in zip(runs, run_labels(runs)):
        try:
            records.append({**json.loads((folder / "run.json").read_text()), "run": label})
        except json.JSONDecodeError as exc:
            raise ResultsFolderError(f"{folder / 'run.json'} is not valid JSON: {exc}") from None
    return records


def write_report(folder, table, title="Comparison of runs"):
    """Write ``comparison.csv``, ``comparison.md`` and a bar chart per data set into ``folder``.

    The chart is ``comparison.png`` for runs of one data set, else ``comparison-<data set>.png`` each.

    Returns
    -------
    list of str
        The names of the files written.
    """
    folder = Path(folder)
    table.to_csv(folder / "comparison.csv", index=False)
    (folder / "comparison.md").write_text(reports.comparison_markdown(table, title))
    written = ["comparison.csv", "comparison.md"]
    groups = reports.comparison_groups(table)
    for name, rows in groups:
        figure = "comparison.png" if len(groups) == 1 else f"comparison-{name or 'unknown'}.png"
        reports.plot_comparison(rows, folder / figure, title=f"{title} on {name}" if name else title)
        written.append(figure)
    return written


def report(paths, *, output=None):
    """Print one comparison of the runs among ``paths`` (see :func:`find_runs`) and write it to a new folder.

    Parameters
    ----------
    paths : list of str
        Results folders, or folders of them, as a shell glob gives them.
    output : str, optional
        The folder to write, new or empty (default ``results/report-<time>``): a report never writes
        over another run's files.

    Returns
    -------
    pandas.DataFrame
        :func:`pipelines.reports.comparison_table` of the runs.
    """
    if output:
        check_output(output)
    table = reports.comparison_table(read_runs(paths))
    print(reports.format_comparison(table))
    folder = output_folder(output) if output else new_folder("results", f"report-{timestamp()}")
    written = write_report(folder, table)
    print(f"comparison of {len(table)} runs written to {folder}: {', '.join(written)}")
    return table


DEMO_MODELS = (
    # (estimator, parameters, segment window): one classical model and three networks, sized so that
    # the whole job takes a few minutes on 2 cores
    ("svm", {}, None),
    ("cnn", {}, None),
    ("lstm", {"pooling": "mean"}, None),
    ("piczak", {"n_hidden": 1000}, 41),  # PiczakNet's protocol: 41-frame windows, clip vote
)


def run_demo(*, store, n_jobs=1, progress=True, output=None):
    """The main job: extract the demo data's features, cross-validate a few models, compare them."""
    from featurestore import load_dataset

    if output:
        check_output(output)
    dataset = load_dataset("demo", store.root / "datasets" / "demo")
    root = output_folder(output) if output else new_folder("results", f"demo-{timestamp()}")
    folders = []
    for name, params, window in DEMO_MODELS:
        experiment = Experiment(dataset, store, n_jobs=n_jobs, progress=progress, output=str(root / name))
        print(f"\n== {name} ==")
        folders.append(experiment.cv(name, params=params, segments=window))
    print("\n== comparison ==")
    table = reports.comparison_table(read_runs(folders))
    print(reports.format_comparison(table))
    written = write_report(root, table, title="Demo")
    print(f"comparison written to {root}: {', '.join(written)}")
    return table
