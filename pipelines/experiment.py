"""Experiments as the command line runs them: features from the store, cross-validation on the data
set's folds, and a results folder with tables, figures, a summary and, where the model is the product,
the model refitted on all clips.

Which runs refit: ``grid`` always (its winner is what the search is for), ``cv`` and ``ensemble`` only
when asked (``refit=True``, ``cli.py cv --refit``): cross-validation measures a configuration, and the
extra fit on all clips would double the time of a net's run. ``run.json`` (``model_saved``) and
``summary.md`` say whether ``model.joblib`` was written.

:class:`Experiment` orchestrates; each step is a piece with one job: :mod:`pipelines.plan` checks what
a run does and builds its pipeline, :func:`~pipelines.search.run_search` (grid, random, successive
halving or Optuna; nested or flat) cross-validates its candidates (``cv`` is a search over one), and
:mod:`pipelines.results` writes the results folder. Nothing here prints: progress goes to a
:class:`~pipelines.reporter.Reporter` (silent by default; the command line passes one that prints).

Augmented copies (``--set augment.copies=2 --set augment.pitch_shift=2``, see :meth:`AugmentSpec.from_settings`)
are extracted into the store after the main features and given to every pipeline, whose ``fit`` adds
the copies of its training clips (``augment_copies``, a parameter a grid can tune). Test folds,
out-of-fold predictions and scores hold the original clips only.
"""

import os
import shutil
import sys
import time
import warnings
from contextlib import nullcontext

from sklearn.base import clone

import estimators
from featurestore import extract as extract_features
from featurestore import extract_augmented
from featurestore.errors import ParameterError
from featurestore.extraction import resolve_audio_params
from featurestore.specs import AugmentSpec
from pipelines import reports
from pipelines.build import (CALIBRATIONS, DEFAULT_ENSEMBLE, clips_in, make_ensemble, nets_to_calibrate,
                             set_run_settings)
from pipelines.compare import format_member_scores, member_scores, read_runs, write_report
from pipelines.config import resolved_config
from pipelines.evaluate import _fit_params, cross_validate
from pipelines.plan import plan_run
from pipelines.records import RunRecord
from pipelines.reporter import Reporter
from pipelines.results import (check_output, dataset_label, new_folder, output_folder, skipped_clips, timestamp,
                               write_run)
from pipelines.search import run_search
from pipelines.splits import ClipSplitter


class Experiment:
    """Runs ``grid``, ``cv`` and ``ensemble`` on one data set and writes their results folders.

    Parameters
    ----------
    dataset : featurestore.Dataset
    store : featurestore.FeatureStore
    settings : dict
        ``{kind or "audio": {param: value}}`` overrides from ``--set``, and ``{"augment": {...}}``
        for stored augmented copies (see :meth:`AugmentSpec.from_settings`).
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
    precision : str, optional
        Arithmetic of nets (``"32"``, ``"bf16-mixed"``, ``"16-mixed"``; see
        :mod:`estimators._precision`); default the estimator's (``"32"``).
    max_epochs : int, optional
        Epoch limit for nets.
    skip_bad : bool
        Skip unusable audio files at extraction.
    progress : bool
        Show progress bars (default off: a notebook sees nothing it did not ask for).
    output : str, optional
        Results folder (default ``results/<command>-<name>-<dataset>-<time>``).
    reporter : pipelines.reporter.Reporter, optional
        Hears of the audio settings, the search's tables, the refit, the saving and the result
        (default: a silent one; ``progress`` alone turns on the progress bars).
    record : pipelines.records.RunRecord, optional
        The command line and configuration the run came from, and its CPU clock (default: started
        with the run); ``run.json`` and ``config.toml`` record them (see :mod:`pipelines.records`).
    tracking : pipelines.tracking.Tracking, optional
        Where the run is also logged: MLflow or TensorBoard (default: nowhere).
    """

    def __init__(self, dataset, store, *, settings=None, folds=None, n_jobs=1, n_threads=None, backend=None,
                 seed=0, device=None, precision=None, max_epochs=None, skip_bad=False, progress=False, output=None,
                 reporter=None, record=None, tracking=None):
        self.dataset = dataset
        self.store = store
        self.settings = settings or {}
        self.folds = folds
        self.n_jobs = n_jobs
        self.n_threads = n_threads
        self.backend = backend
        self.seed = seed
        self.device = device
        self.precision = precision
        self.max_epochs = max_epochs
        self.skip_bad = skip_bad
        self.progress = progress
        self.output = output
        self.reporter = reporter or Reporter()
        self.record = record
        self.tracking = tracking

    # ------------------------------------------------------------------ commands
    def grid(self, name, *, kind=None, param_grid=None, scoring="accuracy", segments=None, vote="mean",
             search="grid", selection="nested", inner_splits=None, n_iter=None, timeout=None, resume_study=None,
             refit=True):
        """Search estimator ``name``'s parameters (its registry grid by default); returns the results folder.

        ``search`` generates the candidates (:func:`~pipelines.search.run_search`): ``"grid"`` (every
        one), ``"random"`` (``n_iter``, from lists and distributions), ``"halving"`` (successive halving
        on epochs or clips) or ``"optuna"`` (``n_iter`` trials or ``timeout`` seconds; the study is
        stored as ``study.db`` in the results folder, and ``resume_study`` continues an earlier one).
        ``selection="nested"`` (default) selects inside each outer training set and reports the
        outer-fold scores of what was selected (``inner_splits`` caps the inner splits); ``"flat"``
        reports the best mean over the folds it selects on, labelled optimistic. Either way the saved
        model is the flat best, refitted on all clips (``refit=False`` skips it: no ``model.joblib``).
        ``search="nested"`` and ``search="flat"`` are deprecated aliases of ``search="grid", selection=...``.
        """
        if search in ("nested", "flat"):
            warnings.warn(f"search={search!r} is deprecated: use search='grid', selection={search!r}", FutureWarning,
                          stacklevel=2)
            search, selection = "grid", search
        grid = param_grid if param_grid is not None else estimators.get_spec(name).param_grid
        plan = plan_run(name, kind=kind, settings=self.settings, grid=grid, segments=segments, vote=vote,
                        search=selection, inner_splits=inner_splits, scoring=scoring, method=search, n_iter=n_iter,
                        timeout=timeout, resume_study=resume_study)
        folder, _, result = self._run("grid", plan, refit=refit)
        method = "" if search == "grid" else f"{search}, "
        self.reporter.done(folder, f"{method}{selection} {scoring}: {result.mean(scoring):.3f} +/- "
                                   f"{result.std(scoring):.3f}{' (optimistic)' if selection == 'flat' else ''}")
        return folder

    def cv(self, name, *, kind=None, params=None, segments=None, vote="mean", refit=False):
        """Cross-validate one configuration of ``name``: a search over the one candidate ``params``.

        Each fold is trained once. ``refit=True`` also fits the configuration on all clips and saves it
        as ``model.joblib`` (for ``cli.py predict``); by default no model is saved.

        Returns the results folder, whose ``run.json``, ``best_params.json`` and ``summary.md`` record
        ``params`` as set on the pipeline.
        """
        grid = {key: [value] for key, value in (params or {}).items()}
        plan = plan_run(name, kind=kind, settings=self.settings, grid=grid, segments=segments, vote=vote)
        folder, _, result = self._run("cv", plan, refit=refit)
        self.reporter.done(folder, f"accuracy {result.mean('accuracy'):.3f} +/- {result.std('accuracy'):.3f}")
        return folder

    def ensemble(self, names=None, *, method="soft", calibrate="validation", refit=False):
        """Cross-validate a voting or stacking ensemble of ``names``; returns the results folder.

        Parameters
        ----------
        names : list of str, optional
            Registry names of the members (default :data:`~pipelines.build.DEFAULT_ENSEMBLE`: the
            classical default ``svm``, the deep default :data:`~pipelines.build.DEEP_DEFAULT`, ``cnn6``,
            ``lstm`` and ``gru``).
        method : {"soft", "hard", "stacking"}
        calibrate : {"validation", "temperature", "none"}
            For a soft vote: temperature-scale the probabilities of the torch nets among the members,
            each on its own validation split (``"validation"``: the nets that hold one out, such as
            the waveform nets; the spectrogram, recurrent and transformer nets, the default
            ensemble's nets among them, train on every clip by default and vote their softmax as it
            is) or on inner fits of each training set (``"temperature"``, two more fits per net); see
            :func:`~pipelines.build.make_ensemble`. The svm is temperature-scaled already.
        refit : bool
            Also fit the ensemble on all clips and save it as ``model.joblib`` (default: no model;
            the scores need only the fold fits).

        The results folder also holds ``members.csv``: each member's scores in the same outer folds,
        from the member fitted inside that fold's ensemble, next to the ensemble's (``run.json``'s
        ``members``, a table in ``summary.md``, and the table the reporter hears).
        """
        names = list(DEFAULT_ENSEMBLE if names is None else names)
        if len(names) < 2:
            raise ParameterError(f"an ensemble needs at least two estimators, not {names}")
        if len(set(names)) < len(names):
            raise ParameterError(f"an ensemble names each estimator once, not {names}")
        if calibrate not in CALIBRATIONS:
            raise ParameterError(f"calibrate={calibrate!r} must be one of {', '.join(CALIBRATIONS)}")
        start = time.perf_counter()
        record = self.record or RunRecord()
        self._check_output()
        plans = [plan_run(name, settings=self.settings) for name in names]
        self._check_settings([plan.kind for plan in plans])
        augment = self._augment()
        self._announce_audio()
        members, sets = [], []
        for plan in plans:
            pipeline, _ = plan.build(self._run_settings())
            self._prepare_tracking(pipeline)
            fs = self._use_sets(pipeline, plan.kind, plan.feature_params, augment)
            members.append((plan.estimator, pipeline))
            sets.append(fs)
        clips = clips_in(self.dataset, *sets)
        model = make_ensemble(members, method, clips, calibrate=nets_to_calibrate(members, calibrate),
                              calibration=calibrate)
        result = cross_validate(model, clips, splitter=self._splitter(clips), n_jobs=self.n_jobs,
                                progress=self.progress)
        self._release_workers()
        scores = member_scores(result.predictions, names)
        self.reporter.table(format_member_scores(scores))
        label = f"{method}-{'+'.join(names)}"
        fitted = self._refit(label, model, clips) if refit else None
        folder = self._folder("ensemble", label)
        config = self._config("ensemble", sets, result, estimators=names, method=method, calibrate=calibrate,
                              refit=refit)
        run = write_run(folder, name=label, estimator=label, kind="+".join(fs.kind for fs in sets), result=result,
                        model=fitted, cv_results=None, feature_set=sets[0], dataset=self.dataset,
                        wall_time=time.perf_counter() - start, augment=augment,
                        skipped=skipped_clips(self.dataset, sets), members=scores, reporter=self.reporter,
                        record=record, config=config, seed=self.seed, pipeline=model)
        self._track(folder, run, result, None)
        self.reporter.done(folder, f"{label}: accuracy {result.mean('accuracy'):.3f} +/- {result.std('accuracy'):.3f}")
        return folder

    # ------------------------------------------------------------------ one run
    def _run(self, command, plan, *, refit):
        """Plan -> features -> search -> refit -> write: cross-validate every candidate of ``plan``, refit
        the best on all clips when ``refit``, write the results folder.

        Every check (output folder, ``--set`` kinds, candidate names, augmented copies, audio settings)
        comes before the first extraction.

        Returns
        -------
        folder : pathlib.Path
        cv_results : pandas.DataFrame
        result : CVResult
            The best candidate's; a nested search's outer-fold scores of what each fold selected.
        """
        start = time.perf_counter()
        record = self.record or RunRecord()
        self._check_output()
        pipeline, grid = plan.build(self._run_settings())
        self._prepare_tracking(pipeline)
        self._check_settings([plan.kind])
        augment = self._augment(grid)
        self._announce_audio()
        fs = self._use_sets(pipeline, plan.kind, plan.feature_params, augment)
        clips = clips_in(self.dataset, fs)
        # an Optuna study is stored in the results folder as it runs: an interrupted run can be resumed
        folder = self._folder(command, plan.estimator) if plan.method == "optuna" else None
        cv_results, result, best_params, nested = self._search(command, plan, pipeline, grid, clips, folder)
        self._release_workers()
        self.reporter.table(reports.format_cv_table(cv_results, metric=plan.scoring,
                                                    label=reports.FLAT_LABEL if plan.search else None))
        if nested is not None:
            self.reporter.table("\n" + reports.format_selection_table(nested.selected_params(), plan.scoring))
        # the saved model: the flat best over all folds, refitted on all clips (also after a nested search)
        model = self._refit(plan.estimator, clone(pipeline).set_params(**best_params), clips) if refit else None
        folder = folder or self._folder(command, plan.estimator)
        if command == "grid":
            resolved = {"param_grid": plan.grid, "scoring": plan.scoring, "search": plan.method,
                        "selection": plan.search, "inner_splits": plan.inner_splits, "n_iter": plan.n_iter,
                        "timeout": plan.timeout}
        else:
            resolved = {"params": {key: values[0] for key, values in plan.grid.items()}, "refit": refit}
        config = self._config(command, [fs], result, estimator=plan.estimator, feature=plan.kind,
                              segments=plan.segments, vote=plan.vote, **resolved)
        run = write_run(folder, name=plan.estimator, estimator=plan.estimator, kind=plan.kind, result=result,
                        model=model, cv_results=cv_results, feature_set=fs, dataset=self.dataset,
                        wall_time=time.perf_counter() - start, scoring=plan.scoring, augment=augment,
                        skipped=skipped_clips(self.dataset, [fs]), search=plan.search, nested=nested,
                        reporter=self.reporter, method=plan.method if plan.search else None, record=record,
                        config=config, seed=self.seed, pipeline=pipeline)
        self._track(folder, run, result, cv_results, nested.flat if nested is not None else None)
        return folder, cv_results, result

    def _search(self, command, plan, pipeline, grid, clips, folder=None):
        """Search the candidates ``grid`` of ``pipeline`` on ``clips`` as ``plan`` says, nested or flat.

        ``folder``: the results folder, made before the search for an Optuna study (its ``study.db``).

        Returns
        -------
        cv_results : pandas.DataFrame
            The flat search's table (also for a nested one).
        result : CVResult
            The flat best's; a nested search's outer-fold scores of what each fold selected.
        best_params : dict
            The flat best's parameters, in the pipeline's names: those of the saved model.
        nested : NestedResult or None
        """
        storage = None
        if folder is not None:
            storage = folder / "study.db"
            if plan.resume_study:  # the earlier run's folder stays as it was written
                shutil.copyfile(plan.resume_study, storage)
        outcome = run_search(pipeline, grid, clips, method=plan.method, selection=plan.search or "flat",
                             splitter=self._splitter(clips), scoring=plan.scoring, inner_splits=plan.inner_splits,
                             n_iter=plan.n_iter, timeout=plan.timeout, seed=self.seed, storage=storage,
                             n_jobs=self.n_jobs, progress=self.progress, desc=command)
        return outcome.cv_results, outcome.result, outcome.best_params, outcome.nested

    # ------------------------------------------------------------------ records and tracking
    def _config(self, command, sets, result, **fields):
        """The fully resolved configuration of the run (``config.toml``): what the command line said
        (``record.config``) with the data set, store, seed, folds, feature parameters, audio settings
        and candidates the run used, so that ``cli.py COMMAND --config config.toml`` repeats it.

        ``output`` is left out: a repeat writes a new results folder.
        """
        settings = {**self.settings, **{fs.kind: fs.params for fs in sets}, "audio": sets[0].audio}
        resolved = {"command": command, "dataset": self.dataset.name, "root": str(self.dataset.root),
                    "dataset_options": self.dataset.options or None, "cache": str(self.store.root),
                    "fingerprint": self.dataset.fingerprint, "skip_bad": self.skip_bad, "seed": self.seed,
                    "folds": [int(f) for f in result.folds["fold"]] if self.dataset.has_folds else None,
                    "device": self.device, "precision": self.precision, "max_epochs": self.max_epochs,
                    "settings": settings, **fields}
        base = dict(self.record.config or {}) if self.record is not None else {}
        base.pop("output", None)
        return resolved_config(base, **resolved)

    def _prepare_tracking(self, pipeline):
        """Give the nets of ``pipeline`` the TensorBoard callback of ``--track tensorboard``."""
        if self.tracking is not None:
            self.tracking.prepare(pipeline)

    def _track(self, folder, run, result, cv_results, candidates=None):
        """Log the written run to the tracker of ``--track`` (MLflow), if any."""
        if self.tracking is not None:
            self.tracking.log(folder, run, result, cv_results, candidates=candidates)

    # ------------------------------------------------------------------ building blocks
    def _run_settings(self):
        """The settings every estimator that declares them gets: seed, device, precision, epochs, threads per fit."""
        # parallel fits share the cores: torch must not start a thread per core in each
        n_threads = self.n_threads or max(1, (os.cpu_count() or 1) // max(1, self.n_jobs))
        return {"random_state": self.seed, "device": self.device, "precision": self.precision,
                "max_epochs": self.max_epochs, "n_threads": n_threads}

    def _check_settings(self, kinds):
        stray = set(self.settings) - set(kinds) - {"audio", "augment"}
        if stray:
            raise ParameterError(f"--set names feature kind {sorted(stray)[0]!r}, which this run does not use "
                                 f"(it uses {', '.join(sorted(set(kinds)))})")

    def _augment(self, params=None):
        """The augmented copies of ``--set augment.*`` (None without), checked with the ``augment_copies``
        values of ``params`` (a grid or a parameter dict) before anything is extracted or trained."""
        augment = AugmentSpec.from_settings(self.settings.get("augment"), seed=self.seed)
        stored = augment.copies if augment else 0
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
            copies = extract_augmented(self.dataset, {kind: params}, augment.augmentation, copies=augment.copies,
                                       seed=augment.seed, store=self.store, audio=self.settings.get("audio"),
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
        """Validate the audio settings of ``--set audio.*`` and report them, once per run, before extracting."""
        overrides = self.settings.get("audio")
        self.reporter.audio(dataset_label(self.dataset), resolve_audio_params(self.dataset, overrides), overrides)

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
        """Fit ``model`` on all clips, telling the reporter: after the progress bar ends this can take minutes
        (a net's epochs are told one by one, see :mod:`pipelines.progress`)."""
        self.reporter.refit_started(label, len(clips))
        start = time.perf_counter()
        X, y = clips["clip_id"].to_numpy(dtype=str), clips["label"].to_numpy()
        progress = nullcontext()
        if "skorch" in sys.modules:  # a net among the model's steps: per-epoch progress
            from pipelines.progress import listening

            progress = listening(model, label, self.reporter.refit_epoch)
        with progress:
            model.fit(X, y, **_fit_params(model, clips["group"].to_numpy()))
        self.reporter.refit_done(label, time.perf_counter() - start)
        return model


#: The demo's ensemble: the default one, whose members (``svm``, the deep default, ``cnn6``, ``tdnn`` and
#: ``gru``) are scored inside it.
DEMO_ENSEMBLE = DEFAULT_ENSEMBLE

DEMO_MODELS = (
    # (estimator, parameters, segment window): the networks cross-validated beside the default ensemble
    # (whose members, svm, cnn, cnn6, tdnn and gru, are scored inside it), sized so that the whole job takes a few
    # minutes on 2 cores.
    # PiczakNet's protocol: every 41-frame window of every clip trained on, a clip's class the mean vote.
    # Its own crops instead (crop=41, one random window per clip per epoch, no --segments) took 145 s of
    # fit time against 324 s here, but scored 0.300 +/- 0.050 against 0.509 +/- 0.084 on the demo (with
    # early stopping then). 20 epochs, not the recipe's 60, keep the job within 10 minutes on 2 cores
    # now that the recipe trains every epoch on every clip (60 epochs: 310 s of fit time, 0.572).
    ("piczak", {"n_hidden": 1000, "max_epochs": 20}, 41),
)

#: Printed under the demo's comparison and written to its comparison.md: what kind of score each row is.
DEMO_SCORES_NOTE = (
    "Every score is an outer-fold score: no model saw its test fold. svm selects C (and calibrates) by "
    "inner cross-validation inside each training fold, so its score is nested by construction; the nets "
    "train with fixed defaults (the cnn, cnn6, tdnn, gru and piczak train on every training clip for a fixed "
    "schedule, and choose nothing on their test fold). The ensemble's members are those fitted inside each "
    "fold's ensemble, scored in the same folds, not trained again; they vote their probabilities as they "
    "are (the svm's temperature-scaled inside its training folds).")


def run_demo(*, store, n_jobs=1, progress=False, output=None, reporter=None):
    """The main job: extract the demo data's features, cross-validate the default ensemble and a few
    networks, compare them (the ensemble's members too). Nothing is refitted: no model is saved.

    ``reporter`` (a :class:`~pipelines.reporter.Reporter`; silent by default) hears of each model's
    run and of the comparison. Returns the comparison table (:func:`pipelines.reports.comparison_table`).
    """
    from featurestore import load_dataset

    reporter = reporter or Reporter()
    if output:
        check_output(output)
    dataset = load_dataset("demo", store.root / "datasets" / "demo")
    root = output_folder(output) if output else new_folder("results", f"demo-{timestamp()}")

    def experiment(name):
        return Experiment(dataset, store, n_jobs=n_jobs, progress=progress, output=str(root / name), reporter=reporter)

    reporter.section(f"ensemble of {' + '.join(DEMO_ENSEMBLE)}")
    folders = [experiment("ensemble").ensemble(list(DEMO_ENSEMBLE))]
    for name, params, window in DEMO_MODELS:
        reporter.section(name)
        folders.append(experiment(name).cv(name, params=params, segments=window))
    reporter.section("comparison")
    table = reports.comparison_table(read_runs(folders, reporter))
    reporter.table(reports.format_comparison(table) + "\n\n" + DEMO_SCORES_NOTE)
    written = write_report(root, table, title="Demo")
    with open(root / "comparison.md", "a") as file:
        file.write(f"\n{DEMO_SCORES_NOTE}\n")
    reporter.compared(root, written)
    return table
