r"""Command line of the audio classification toolkit.

    python cli.py demo                                  # the main job: the default ensemble and two nets, demo data
    python cli.py extract --dataset urbansound8k --root PATH --features mel,mfcc --n-jobs 2
    python cli.py grid --estimator lstm                 # nested grid search (demo data by default)
    python cli.py grid --estimator svm --search optuna --trials 20   # or random, halving; nested by default
    python cli.py cv --estimator svm                    # one configuration across the folds (--refit: a model)
    python cli.py ensemble                              # svm + the deep default + cnn6 + lstm + gru, soft vote
    python cli.py grid --estimator svm --scheduler tcp://HOST:8786   # on a Dask cluster (extract, cv too)
    python cli.py grid --estimator svm --set augment.copies=2 --set augment.pitch_shift=2 \
        --param-grid '{"augment_copies": [0, 2]}'      # stored augmented copies, tuned by the grid
    python cli.py report results/*                      # compare runs, in a new results/report-<time>
    python cli.py predict --model results/RUN/model.joblib FILE...
    python cli.py export --model results/RUN/model.joblib --format onnx   # then predict --onnx
    python cli.py datasets | features | estimators | cache list | cache remove PATH

Every command accepts --help. Bad input (a user error: see user_errors() in cli.py) exits with status 2
and a one-line reason; any other exception is a bug and shows its traceback. `predict` exits 1 when
some files could not be classified. Output cut short by a closed pipe (`cli.py estimators | head`)
ends quietly with status 141, as a program killed by SIGPIPE does in a shell.
"""

import argparse
import ast
import json
import os
import sys
from contextlib import contextmanager, nullcontext


class UsageError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


#: --n-jobs of every command. One process whose torch fits use every core (they get the machine's cores
#: divided by --n-jobs): the least memory, no worker processes to start, and on 2 cores within a factor
#: of two of --n-jobs 2, which runs two fits (or extracts two batches) at once.
DEFAULT_N_JOBS = 1
N_JOBS_HELP = f"parallel fits (worker processes) and extraction threads (default {DEFAULT_N_JOBS})"


def parse_value(text):
    """``"128"`` -> 128, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"none"`` -> None, ``"[32,32]"`` -> list,
    anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def parse_folds(text):
    """``"1,2"`` -> ``[1, 2]``; :class:`UsageError` naming ``--folds`` and the value otherwise."""
    try:
        return [int(f) for f in text.split(",")]
    except ValueError:
        raise UsageError(f"--folds {text!r}: expected comma-separated fold numbers, e.g. 1,2") from None


def check_folds(folds, dataset):
    """:class:`UsageError` if a fold of ``--folds`` is not among the data set's folds."""
    if folds is None:
        return
    if not dataset.has_folds:
        raise UsageError(f"--folds: data set {dataset.name!r} has no predefined folds (it is split by k-fold)")
    absent = sorted(set(folds) - set(dataset.folds))
    if absent:
        raise UsageError(f"--folds: fold(s) {absent} have no clips; the folds present are {dataset.folds}")


def check_estimators(names):
    """:class:`UsageError` (with a close match) for a name that is not a registered estimator."""
    import estimators

    for name in names:
        try:
            estimators.get_spec(name)
        except ValueError as exc:  # estimators raises ValueError for an unknown name: the user's input here
            raise UsageError(f"--estimator: {exc}") from None


def parse_settings(items):
    """``["mel.n_mels=128", "audio.sr=16000"]`` -> ``{"mel": {"n_mels": 128}, "audio": {"sr": 16000}}``."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        scope, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise UsageError(f"--set {item!r}: expected KIND.PARAM=VALUE, e.g. mel.n_mels=128 or audio.sr=16000")
        out.setdefault(scope, {})[name] = parse_value(value)
    return out


def parse_param_grid(items):
    """``--param-grid`` values: a JSON object, a ``.json`` or ``.toml`` file of one, or ``key=v1,v2`` items
    (repeatable). A value that is a table is a distribution (``{"dist": "loguniform", "low": 0.01,
    "high": 100}``; see :mod:`pipelines.spaces`); any other value that is not a list is a list of one."""
    grid = {}
    for item in items or []:
        text = item.strip()
        if text.startswith("{") or ("=" not in text and text.lower().endswith((".json", ".toml"))):
            grid.update({k: v if isinstance(v, (list, dict)) else [v] for k, v in _load_grid(text).items()})
            continue
        key, sep, values = text.partition("=")
        if not sep or not key:
            raise UsageError(f"--param-grid {item!r}: expected KEY=V1,V2, a JSON object or a .json/.toml file")
        grid[key.strip()] = [parse_value(v) for v in _split_values(values)]
    return grid


def _load_grid(text):
    """The table of a ``--param-grid`` JSON object or file."""
    if not text.startswith("{"):
        from pipelines.spaces import load_space

        if not os.path.isfile(text):
            raise UsageError(f"--param-grid {text}: no such file")
        loaded = load_space(text)
    else:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--param-grid is not valid JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"--param-grid {text[:40]}: expected a table of parameter names, not {type(loaded).__name__}")
    return loaded


def _split_values(text):
    """Split on commas outside brackets: ``"[32,32],[64,64]"`` -> ``["[32,32]", "[64,64]"]``."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[({"
        depth -= char in "])}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


# --------------------------------------------------------------------------- data sets and store
def add_dataset_args(parser, default="demo"):
    parser.add_argument("--dataset", default=default, help=f"data set name (default: {default}); see `datasets`")
    parser.add_argument("--root", help="data set folder (for csv: the manifest file)")
    parser.add_argument("--dataset-option", action="append", metavar="KEY=VALUE", default=[],
                        help="a data set option, e.g. esc10=true for esc50 (repeatable)")
    parser.add_argument("--skip-missing", action="store_true",
                        help="skip metadata rows whose audio file is missing (recorded, with a warning)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip unreadable/empty/non-finite audio files (recorded) instead of stopping")
    parser.add_argument("--fingerprint", action="store_true",
                        help="identify each audio file by a BLAKE2b hash of its content instead of its size and "
                             "modification time, so that a file edited in place gets new features (reads every "
                             "file once per run; a new data set identity, so features are extracted once more)")
    parser.add_argument("--cache", help="feature store folder (default: $FEATURESTORE_CACHE or ./cache)")
    parser.add_argument("--set", action="append", metavar="KIND.PARAM=VALUE", default=[],
                        help="override a feature or audio parameter, e.g. mel.n_mels=128, audio.sr=16000; "
                             "augment.copies, augment.seed and augment.time_stretch|pitch_shift|noise_snr|gain_db|"
                             "time_shift store augmented copies of the clips for training")
    parser.add_argument("--n-jobs", type=int, default=DEFAULT_N_JOBS, help=N_JOBS_HELP)
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on a Dask cluster: tcp://HOST:PORT of its scheduler, or `local` for a cluster of "
                             "--n-jobs workers on this machine; the store must be on a path every worker sees")
    parser.add_argument("--worker-memory", metavar="SIZE",
                        help="memory limit of each worker of `--scheduler local` (e.g. 2GiB); a worker streams "
                             "feature sets larger than a quarter of it")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def open_dataset(args):
    from featurestore import load_dataset

    options = parse_dataset_options(args.dataset_option)
    root = args.root
    if args.dataset == "demo" and root is None:  # the demo's audio lives in the store
        root = open_store(args).root / "datasets" / "demo"
    return load_dataset(args.dataset, root, skip_missing=args.skip_missing, fingerprint=args.fingerprint,
                        **options)


def parse_dataset_options(items):
    """``["esc10=true"]`` -> ``{"esc10": True}``."""
    options = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--dataset-option {item!r}: expected KEY=VALUE")
        options[key.strip()] = parse_value(value)
    return options


def open_store(args):
    from featurestore import FeatureStore

    return FeatureStore(args.cache) if args.cache else FeatureStore()


def cluster_session(args, store, dataset):
    """The ``pipelines.cluster.session`` of ``--scheduler`` (a null context yielding None without it)."""
    if not args.scheduler:
        return nullcontext()
    from pipelines.cluster import session

    store.root.mkdir(parents=True, exist_ok=True)  # so that the workers can be asked to read it
    paths = [store.root, *dataset.clips["path"].iloc[:1]]  # the store, and the audio for extraction
    return session(args.scheduler, args.n_jobs, paths=paths, memory_limit=args.worker_memory)


def cmd_datasets(args):
    from featurestore import datasets

    for name in datasets.available():
        module = datasets.get_module(name)
        options = ", ".join(f"{k}={v!r}" for k, v in module.OPTIONS.items()) or "-"
        audio = module.AUDIO_DEFAULTS
        if hasattr(module, "audio_defaults"):  # read from the files when the data set is loaded
            from featurestore.datasets._clip_length import COVERED, SHORTEST

            audio = (f"{audio} at most (the duration is the one that holds {COVERED * 100:g} % of the files whole, "
                     f"{SHORTEST:g} s or more)")
        print(f"{name:14s} {module.DESCRIPTION}\n{'':14s} audio defaults {audio}; options: {options}")


def cmd_features(args):
    from featurestore import audio, features

    print(f"{'audio':8s} settings of every extraction (--set audio.NAME=VALUE): {audio.AUDIO_DEFAULTS}")
    for kind in features.available():
        module = features.get(kind)
        print(f"{kind:8s} {module.DESCRIPTION}\n{'':8s} defaults: {module.DEFAULTS}")


def cmd_estimators(args):
    import estimators

    for name in estimators.available():
        spec = estimators.get_spec(name)
        params = f" {spec.feature_params}" if spec.feature_params else ""
        print(f"{name:12s} {spec.class_name}: input={spec.input}, feature={spec.feature}{params}\n"
              f"{'':12s} {spec.description}\n{'':12s} grid: {json.dumps(spec.param_grid)}")


def cmd_extract(args):
    from featurestore import extract, extract_augmented
    from featurestore.specs import AugmentSpec

    dataset = open_dataset(args)
    settings = parse_settings(args.set)
    kinds = [k.strip() for k in args.features.split(",") if k.strip()]
    unused = set(settings) - set(kinds) - {"audio", "augment"}
    if unused:
        raise UsageError(f"--set names {sorted(unused)[0]!r}, which is not among --features {','.join(kinds)}")
    augment = AugmentSpec.from_settings(settings.get("augment"))
    store = open_store(args)
    with cluster_session(args, store, dataset) as client:
        common = {"store": store, "audio": settings.get("audio"), "batch_size": args.batch_size,
                  "n_jobs": sum(client.nthreads().values()) if client else args.n_jobs, "skip_bad": args.skip_bad,
                  "dtype": args.dtype, "backend": "dask" if client else "threading", "progress": not args.no_progress}
        requested = {k: settings.get(k, {}) for k in kinds}
        sets = extract(dataset, requested, **common)
        copies = {}
        if augment:
            copies = extract_augmented(dataset, requested, augment.augmentation, copies=augment.copies,
                                       seed=augment.seed, **common)
    for kind, fs in [*sets.items(), *((f"{k} (augmented x{augment.copies})", fs) for k, fs in copies.items())]:
        skipped = f", {len(fs.skipped)} skipped" if fs.skipped else ""
        print(f"{kind}: {len(fs)} clips x {fs.feature_shape}{skipped} -> {fs.path}")
    for row in dataset.skipped:
        print(f"skipped (missing): {row['path']}", file=sys.stderr)
    for fs in [*sets.values(), *copies.values()]:
        for row in fs.skipped:
            print(f"skipped ({fs.kind}): {row['path']}: {row['reason']}", file=sys.stderr)


def cmd_cache(args):
    store = open_store(args)
    if args.action == "list":
        entries = store.entries()
        if not entries:
            print(f"the store at {store.root} is empty")
        for e in entries:
            if e["status"] == "damaged":
                print(f"{'damaged':8s} {e['dataset']:13s} {e['kind']:7s} {'':33s} {e['size_mb']:8.1f} MB  {e['path']}\n"
                      f"{'':9s}{e['problem']}")
                continue
            shape = "x".join(map(str, e["shape"])) if e["shape"] else "-"
            augmentation = e.get("augmentation")
            kind = f"{e['kind']}+aug" if augmentation else e["kind"]
            print(f"{e['status']:8s} {e['dataset']:13s} {kind:7s} {e['n_clips']:6d} clips {shape:>14s} "
                  f"{e['size_mb']:8.1f} MB  {e['path']}\n{'':9s}{json.dumps(e['params'])}")
            if augmentation:
                bounds = {k: v for k, v in augmentation.items() if k not in ("copies", "seed") and v not in (0, None)}
                print(f"{'':9s}augmented copies: {augmentation['copies']} per clip, seed {augmentation['seed']}, "
                      f"{json.dumps(bounds)}")
    elif args.action == "verify":
        return 1 if verify_cache(store) else 0  # 1: some set is damaged (2 is for bad input)
    else:
        if not args.paths:
            raise UsageError("cache remove needs the path(s) of feature sets; see `cache list`")
        for path in args.paths:
            store.remove(path)
            print(f"removed {path}")


def verify_cache(store):
    """``cache verify``: read every feature set in full, check its checksums, print each; the number damaged."""
    report = store.verify()
    for row in report:
        print(f"{'ok' if row['problem'] is None else 'damaged':8s} {row['path']}"
              + (f"\n{'':9s}{row['problem']}" if row["problem"] else ""))
    damaged = sum(row["problem"] is not None for row in report)
    print(f"{len(report)} feature sets checked, {damaged} damaged"
          + (" (remove them with `cache remove PATH`, or extract them again)" if damaged else ""),
          file=sys.stderr if damaged else sys.stdout)
    return damaged


# --------------------------------------------------------------------------- experiments
class PrintReporter:
    """The events of :class:`pipelines.reporter.Reporter`, printed: the command line alone prints.

    Not a subclass, so that listing commands do not import ``pipelines`` (and torch); a test checks
    that it has every event of ``Reporter``.
    """

    def audio(self, dataset, audio, overrides):
        from pipelines.results import describe_audio

        print(f"audio of {dataset}: {describe_audio(audio, overrides)}", flush=True)

    def table(self, text):
        print(text)

    def section(self, title):
        print(f"\n== {title} ==")

    def refit_started(self, label, n_clips):
        print(f"refitting {label} on all {n_clips} clips ...", flush=True)

    def refit_epoch(self, label, epoch, max_epochs, seconds, train_loss, valid_acc):
        valid = "" if valid_acc is None else f", valid acc {valid_acc:.3f}"
        print(f"  {label} epoch {epoch}/{max_epochs}: train loss {train_loss:.3f}{valid}, {seconds:.1f} s",
              flush=True)

    def refit_done(self, label, seconds):
        print(f"refitted {label} in {seconds:.1f} s", flush=True)

    def saving(self, path):
        print(f"saving the model to {path} ...", flush=True)

    def saved(self, path, size_bytes, seconds):
        print(f"saved {size_bytes / 1e6:.1f} MB in {seconds:.1f} s", flush=True)

    def done(self, folder, summary):
        print(f"{summary}; results in {folder}")

    def note(self, text):
        print(text, file=sys.stderr)

    def compared(self, folder, written, n_runs=None):
        runs = "" if n_runs is None else f" of {n_runs} runs"
        print(f"comparison{runs} written to {folder}: {', '.join(written)}")


def add_experiment_args(parser):
    add_dataset_args(parser)
    parser.add_argument("--feature", help="feature kind (default: the estimator's)")
    parser.add_argument("--folds", help="test folds to run, e.g. 1,2 (default: all; training uses the others)")
    parser.add_argument("--device", help="torch device: auto, cpu, cuda (default: the estimator's, auto)")
    parser.add_argument("--precision", choices=["32", "bf16-mixed", "16-mixed"],
                        help="arithmetic of torch nets: float32, or autocast to bfloat16 or float16 (with loss "
                             "scaling) (default: the estimator's, 32)")
    parser.add_argument("--max-epochs", type=int, help="maximum training epochs of torch nets")
    parser.add_argument("--seed", type=int, default=0, help="random seed of models and splits (default 0)")
    parser.add_argument("--segments", type=int, metavar="WINDOW",
                        help="classify clips by voting over windows of WINDOW frames (samples for waveforms)")
    parser.add_argument("--vote", choices=["mean", "majority"], default="mean", help="segment vote (default mean)")
    parser.add_argument("--output", help="results folder, new or empty (default: "
                                         "results/<command>-<name>-<dataset>-<time>, where <dataset> is the data "
                                         "set's name, or its root's for csv and folder)")


# --------------------------------------------------------------------------- config files, records, tracking
RUN_COMMANDS = ("grid", "cv", "ensemble")


def add_run_options(parser):
    """``--config``, ``--track`` and ``--track-uri`` of the run commands (``grid``, ``cv``, ``ensemble``)."""
    parser.add_argument("--config", metavar="FILE.toml",
                        help="read the options from a TOML file (e.g. a results folder's config.toml, which repeats "
                             "that run); options on the command line override it")
    parser.add_argument("--track", choices=["mlflow", "tensorboard"],
                        help="also log the run: mlflow (params, per-fold and mean scores, nets' curves, figures and "
                             "the model; one child run per candidate) or tensorboard (event files of every net's fit)")
    parser.add_argument("--track-uri", metavar="URI",
                        help="mlflow: tracking URI (default sqlite:///mlflow.db; a server: http://HOST:5000); "
                             "tensorboard: the event files' folder (default runs)")
    parser.set_defaults(command_parser=parser)


def config_in(argv):
    """``(command, path)`` of a run command's ``--config`` in ``argv``, or None."""
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in RUN_COMMANDS:
        return None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return command, argv[i + 1]
        if arg.startswith("--config="):
            return command, arg.partition("=")[2]
    return None


def run_record(args, argv):
    """The :class:`~pipelines.records.RunRecord` of a run command: its command line and configuration."""
    from pipelines.config import args_config
    from pipelines.records import RunRecord

    tables = {"settings": parse_settings(args.set), "dataset_options": parse_dataset_options(args.dataset_option),
              "folds": parse_folds(args.folds) if args.folds else None}
    if getattr(args, "param_grid", None):
        tables["param_grid"] = parse_param_grid(args.param_grid)
    if getattr(args, "params", None):
        tables["params"] = {k: v[0] for k, v in parse_param_grid(args.params).items()}
    config = args_config(args, args.command_parser, args.command, tables=tables)
    return RunRecord(argv=list(argv), config=config)


def tracking_from_args(args):
    """The :class:`~pipelines.tracking.Tracking` of ``--track`` (None without)."""
    if not args.track:
        if args.track_uri:
            raise UsageError("--track-uri needs --track mlflow or --track tensorboard")
        return None
    from pipelines.tracking import Tracking

    return Tracking(args.track, args.track_uri)


@contextmanager
def experiment_from_args(args):
    """An ``Experiment`` of the command-line options, on the Dask cluster of ``--scheduler`` if given."""
    from pipelines.experiment import Experiment

    settings = parse_settings(args.set)
    folds = parse_folds(args.folds) if args.folds else None
    tracking_from_args(args)  # an unusable tracker fails before the data set is read
    if args.output:
        from pipelines.results import check_output

        check_output(args.output)  # before the data set is read, let alone trained on
    dataset, store = open_dataset(args), open_store(args)
    check_folds(folds, dataset)
    with cluster_session(args, store, dataset) as client:
        parallel = {"n_jobs": args.n_jobs}
        if client is not None:
            from pipelines.cluster import threads_per_fit

            parallel = {"n_jobs": sum(client.nthreads().values()), "n_threads": threads_per_fit(client),
                        "backend": "dask"}
        yield Experiment(dataset=dataset, store=store, settings=settings, folds=folds, seed=args.seed,
                         device=args.device, precision=args.precision, max_epochs=args.max_epochs,
                         skip_bad=args.skip_bad, progress=not args.no_progress, output=args.output,
                         reporter=PrintReporter(), record=getattr(args, "record", None),
                         tracking=tracking_from_args(args), **parallel)


def cmd_grid(args):
    check_estimators([args.estimator])
    search, selection = args.search, args.selection
    if search in ("nested", "flat"):  # before --selection existed, --search chose nested or flat
        if selection not in (None, search):
            raise UsageError(f"--search {search} (deprecated: --search grid --selection {search}) contradicts "
                             f"--selection {selection}")
        print(f"warning: --search {search} is deprecated; it means --search grid --selection {search}",
              file=sys.stderr)
        search, selection = "grid", search
    grid = parse_param_grid(args.param_grid) if args.param_grid else None
    with experiment_from_args(args) as experiment:
        experiment.grid(args.estimator, kind=args.feature, param_grid=grid, scoring=args.scoring,
                        segments=args.segments, vote=args.vote, search=search, selection=selection or "nested",
                        inner_splits=args.inner_splits, n_iter=args.n_iter, timeout=args.timeout,
                        resume_study=args.resume_study)


def cmd_cv(args):
    check_estimators([args.estimator])
    params = {k: v[0] for k, v in parse_param_grid(args.params).items()} if args.params else {}
    with experiment_from_args(args) as experiment:
        experiment.cv(args.estimator, kind=args.feature, params=params, segments=args.segments, vote=args.vote,
                      refit=args.refit)


def cmd_ensemble(args):
    names = [n.strip() for n in args.estimators.split(",") if n.strip()] if args.estimators else None
    check_estimators(names or [])
    with experiment_from_args(args) as experiment:
        experiment.ensemble(names, method=args.method, calibrate=args.calibrate, refit=args.refit)


def cmd_report(args):
    from pipelines.compare import report

    output = args.output
    if args.html and not output:  # the page goes into the folder that report creates: create it here
        from pipelines.results import new_folder, timestamp

        output = new_folder("results", f"report-{timestamp()}")
    try:
        report(args.results, output=output, reporter=PrintReporter())
    except Exception:
        if output != args.output and not any(output.iterdir()):
            output.rmdir()  # the folder created above stays only with something in it
        raise
    if args.html:
        from pipelines.compare import find_runs, run_labels
        from pipelines.html_report import write_page

        runs, _ = find_runs(args.results)
        page = write_page(os.path.join(output, "report.html"), list(zip([f for f, _ in runs], run_labels(runs))))
        print(f"wrote {page}: the runs, per-class scores, confusion matrices with their clips' audio, "
              "learning curves and records on one page")


def cmd_predict(args):
    from pipelines.predict import predict_files

    failed = []

    def report_failure(path, exc):
        failed.append(path)
        print(f"error: {exc}", file=sys.stderr)  # AudioError names the file and the problem

    predict = predict_files
    if args.onnx:
        from pipelines.export import predict_onnx_files as predict
    predictions = predict(args.onnx or args.model, args.files, hop=args.hop, on_error=report_failure)
    if len(predictions):
        print(predictions.to_string(index=False))
    if failed:
        print(f"{len(failed)} of {len(args.files)} files could not be classified", file=sys.stderr)
        return 1
    return 0


def cmd_export(args):
    from pipelines.export import export_onnx

    written = export_onnx(args.model, args.output)
    check = written["check"]
    print(f"wrote {written['onnx']} ({written['exporter']}; input {written['input']} "
          f"{tuple(written['input_shape'])} of {written['feature']['kind']} features, output "
          f"{written['output']} over {len(written['classes'])} classes) and its sidecar {written['onnx']}.json")
    print(f"checked on {check['n_clips']} clips of {check['on']}: max abs difference of probabilities "
          f"{check['max_abs_diff']:.2g} (at most {check['atol']:g})")


def cmd_demo(args):
    from pipelines.experiment import run_demo

    run_demo(store=open_store(args), n_jobs=args.n_jobs, progress=not args.no_progress, output=args.output,
             reporter=PrintReporter())


# --------------------------------------------------------------------------- parser
PARAMETER_NAMES = """

search spaces (--param-grid): lists of values, or distributions (random, halving, optuna):
  {"C": {"dist": "loguniform", "low": 0.01, "high": 100}, "kernel": ["linear", "rbf"]}
  dist is uniform [low, high], loguniform [low, high] (low > 0) or randint (low, ..., high - 1), as
  in scipy.stats; a .json or .toml file holds the same table (TOML: C = {dist = "loguniform", ...}).

parameter names (--param-grid, --params):
  the estimator class's own, flat, as its docstring and `cli.py estimators` list them: svm's C and
  kernel (SVMClassifier), lstm's hidden_size and pooling (LSTMClassifier); every torch net also
  takes lr, batch_size, max_epochs and skorch's optimizer__NAME (e.g. optimizer__weight_decay); the
  training recipe's crop, lr_schedule, warmup_epochs, label_smoothing, monitor and min_epochs too.
  With --segments, window, overlap and vote address the segment vote. augment_copies (with
  --set augment.copies) tunes stored copies; sampler (none, over, under, smote: imbalanced-learn,
  classical models) and balanced_batches (nets) counter class imbalance. A mistyped name fails at
  once with a close match.

defaults: the grid is the estimator's own (`cli.py estimators`); torch nets train for their
  max_epochs (20) unless --max-epochs (the spectrogram and recurrent nets: 60, on every training
  clip; --params valid_fraction=0.2 adds early stopping on the validation accuracy); the seed is 0;
  every fold is a test fold once."""

DEMO_EXAMPLES = """  cli.py demo                              # what `make demo` runs: a few minutes on 2 cores
  cli.py demo --n-jobs 2 --no-progress     # two fits at once
  cli.py report results/demo-*             # compare demos"""

EXTRACT_EXAMPLES = """  cli.py extract --dataset urbansound8k --root ~/data/UrbanSound8K --features mel,mfcc
  cli.py extract --dataset esc50 --root ~/data/ESC-50 --features mel --set mel.n_mels=128 --set audio.duration=5
  cli.py extract --dataset csv --root birds.csv --features mfcc --set audio.sr=16000 --skip-bad"""

GRID_EXAMPLES = """  cli.py grid --estimator lstm                       # its default grid, on the demo data
  cli.py grid --estimator svm --param-grid 'C=0.1,1,10' --param-grid 'kernel=linear,rbf'
  cli.py grid --estimator cnn --param-grid '{"lr": [0.01, 0.001]}' --max-epochs 5 --folds 1,2
  cli.py grid --estimator svm --dataset esc50 --root ~/data/ESC-50 --scoring balanced_accuracy
  cli.py grid --estimator svm --dataset urbansound8k --root ~/data/UrbanSound8K --inner-splits 3
  cli.py grid --estimator svm --selection flat      # optimistic: selected and scored on the same folds
  cli.py grid --estimator svm --search random --n-iter 20 --param-grid space.json   # see search spaces below
  cli.py grid --estimator cnn --search halving --max-epochs 9      # epochs are the resource of a net
  cli.py grid --estimator cnn --search optuna --trials 20 --param-grid space.toml
  cli.py grid --estimator cnn --search optuna --trials 10 --resume-study results/grid-cnn-demo-TIME/study.db
  cli.py grid --config results/RUN/config.toml      # repeat a run; options given here override the file
  cli.py grid --estimator svm --param-grid 'sampler=none,over,smote' --track mlflow"""

CV_EXAMPLES = """  cli.py cv --estimator svm
  cli.py cv --estimator svm --refit                 # also fit on all clips: model.joblib for `predict`
  cli.py cv --estimator lstm --params hidden_size=150 --params pooling=last
  cli.py cv --estimator piczak --segments 41 --dataset urbansound8k --root ~/data/UrbanSound8K
  cli.py cv --estimator cnn --params balanced_batches=true --track tensorboard"""

ENSEMBLE_EXAMPLES = """  cli.py ensemble                          # svm + cnn + cnn6 + lstm + gru, soft vote
  cli.py ensemble --estimators svm,piczak,lstm
  cli.py ensemble --estimators svm,cnn --method stacking --max-epochs 5"""

REPORT_EXAMPLES = """  cli.py report results/*                  # every run; a demo folder counts as its runs
  cli.py report results/demo-* --html      # and report.html: confusion matrices you can listen to
  cli.py report results/cv-* --output results/cv-report

Rows are named by their results folder; runs on different data sets are ranked separately.
Writes comparison.csv, comparison.md and comparison.png (one comparison-<data set>.png each when
the runs come from several data sets) to a new folder, never into another run's."""

PREDICT_EXAMPLES = """  cli.py predict --model results/cv-svm-demo-20260105-142501/model.joblib a.wav b.flac
  cli.py predict --model results/grid-cnn-demo-20260105-142501/model.joblib --hop 0.25 long_recording.wav

A model.joblib comes from grid, or from cv and ensemble with --refit.

  cli.py predict --onnx results/cv-svm-demo-20260105-142501/model.onnx a.wav   # after `cli.py export`

A file that cannot be read is reported on stderr and the others are classified; the exit status
is then 1."""

EXPORT_EXAMPLES = """  cli.py export --model results/cv-svm-demo-20260105-142501/model.joblib --format onnx
  cli.py export --model results/demo-20260105-142501/cnn/model.joblib --output cnn.onnx

The graph takes the features of clips as the store holds them (input "features", shape (n, ...))
and returns "probabilities" (n, n_classes); the sidecar OUTPUT.json holds the classes, the feature
kind and parameters and the audio settings. The export checks the graph against the model on
stored clips and fails if their probabilities differ by more than 1e-4. Needs the extra onnx."""


def command(sub, name, help, examples):
    """A sub-command parser whose --help ends with ``examples`` (kept as written)."""
    return sub.add_parser(name, help=help, description=help, epilog=f"examples:\n{examples}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser(config=None):
    """The parser of every command; ``config`` (``(command, path, table)`` of a ``--config`` file) becomes
    the defaults of that run command (:func:`pipelines.config.apply_config`)."""
    summary, examples, notes = __doc__.split("\n\n")[:3]
    parser = argparse.ArgumentParser(prog="cli.py", description=summary, epilog=f"examples:\n{examples}\n\n{notes}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = command(sub, "demo", "the main job: extract the demo data's features, cross-validate the default ensemble "
                "(svm + the deep default + cnn6 + lstm + gru, each member scored in the same folds) and one model more "
                "(piczak) on its 5 folds and compare them; no model is saved", DEMO_EXAMPLES)
    p.add_argument("--cache", help="feature store folder (default: $FEATURESTORE_CACHE or ./cache)")
    p.add_argument("--n-jobs", type=int, default=DEFAULT_N_JOBS, help=N_JOBS_HELP)
    p.add_argument("--output", help="results folder, new or empty (default: results/demo-<time>)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_demo)

    command(sub, "datasets", "list data sets and their options",
            "  cli.py datasets\n  cli.py datasets | grep -A1 esc50").set_defaults(func=cmd_datasets)
    command(sub, "features", "list feature kinds and their parameters",
            "  cli.py features                     # then e.g. --set mel.n_mels=128").set_defaults(func=cmd_features)
    command(sub, "estimators", "list estimators, inputs, default features and grids",
            "  cli.py estimators\n  cli.py estimators | grep -A2 '^svm'").set_defaults(func=cmd_estimators)

    p = command(sub, "extract", "compute feature sets into the store (reused when present)", EXTRACT_EXAMPLES)
    add_dataset_args(p)
    p.add_argument("--features", required=True, help="comma-separated feature kinds, e.g. mel,mfcc")
    p.add_argument("--batch-size", type=int, default=32, help="clips per batch (default 32)")
    p.add_argument("--dtype", choices=["float32", "float16"], default="float32", help="storage dtype")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("cache", help="list, verify (read and check every set) or remove stored feature sets")
    p.add_argument("action", choices=["list", "verify", "remove"])
    p.add_argument("paths", nargs="*", help="feature set paths to remove (see `cache list`)")
    p.add_argument("--cache", help="feature store folder")
    p.set_defaults(func=cmd_cache)

    p = command(sub, "grid", "grid search of one estimator on the data set's folds", GRID_EXAMPLES + PARAMETER_NAMES)
    p.add_argument("--estimator", required=True, help="registry name; see `estimators`")
    p.add_argument("--param-grid", action="append", metavar="GRID",
                   help="JSON object, .json/.toml file of one (distributions: see below) or KEY=V1,V2 (repeatable); "
                        "default: the estimator's grid, as `estimators` "
                        "lists it")
    p.add_argument("--scoring", default="accuracy", choices=["accuracy", "balanced_accuracy", "f1_macro"],
                   help="metric that picks the best parameters (default accuracy)")
    p.add_argument("--search", choices=["grid", "random", "halving", "optuna", "nested", "flat"], default="grid",
                   help="how candidates are generated: grid (default: every one), random (--n-iter draws from lists "
                        "and distributions), halving (successive halving: epochs of nets, training clips of other "
                        "models), optuna (TPE, --trials or --timeout, nets pruned per epoch; needs the optuna "
                        "extra). nested and flat: deprecated, for --search grid --selection nested|flat")
    p.add_argument("--selection", choices=["nested", "flat"],
                   help="nested (default): select inside each outer training set, report the outer-fold score of "
                        "what was selected; flat: select and score on the same folds (optimistic, cheaper)")
    p.add_argument("--inner-splits", type=int, metavar="N",
                   help="nested: at most N inner splits per outer fold (default: all remaining folds); "
                        "the search costs (N + 1) times a flat one")
    p.add_argument("--n-iter", "--trials", dest="n_iter", type=int, metavar="N",
                   help="random: candidates drawn (default 10); halving: random candidates (default: the whole "
                        "grid); optuna: trials per study (default 20)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="optuna: stop starting trials after SECONDS, per study (nested: one study per outer fold, "
                        "and one on all folds for the saved model)")
    p.add_argument("--resume-study", metavar="STUDY_DB",
                   help="optuna: continue the studies of an earlier run's study.db (copied into the new results "
                        "folder; --trials more trials each); same space, scoring and folds")
    add_experiment_args(p)
    add_run_options(p)
    p.set_defaults(func=cmd_grid)

    p = command(sub, "cv", "cross-validate one configuration on the data set's folds", CV_EXAMPLES + PARAMETER_NAMES)
    p.add_argument("--estimator", required=True, help="registry name; see `estimators`")
    p.add_argument("--params", action="append", metavar="KEY=VALUE",
                   help="estimator parameters (repeatable); default: the estimator's defaults")
    p.add_argument("--refit", action="store_true",
                   help="also fit on all clips and save model.joblib (for `predict`); by default each fold is "
                        "trained once and no model is saved")
    add_experiment_args(p)
    add_run_options(p)
    p.set_defaults(func=cmd_cv)

    p = command(sub, "ensemble", "voting or stacking ensemble, each member on its own feature kind",
                ENSEMBLE_EXAMPLES)
    p.add_argument("--estimators", help="comma-separated registry names, e.g. svm,piczak,lstm (default: "
                                        "svm, the deep default, cnn6, tdnn and gru, see "
                                        "`pipelines.build.DEFAULT_ENSEMBLE`)")
    p.add_argument("--method", choices=["soft", "hard", "stacking"], default="soft",
                   help="soft or hard voting, or stacking (default soft)")
    p.add_argument("--calibrate", choices=["validation", "temperature", "none"], default="validation",
                   help="soft vote: temperature-scale the nets' probabilities, each on its own validation split "
                        "(validation, the default: no extra fit; the nets that hold one out, such as the "
                        "waveform nets, while the spectrogram, recurrent and transformer nets train on every "
                        "clip and vote as they are) or on two inner splits of each training set (temperature: "
                        "two more fits per net), or not (none); the svm is temperature-scaled already")
    p.add_argument("--refit", action="store_true",
                   help="also fit the ensemble on all clips and save model.joblib (default: scores only)")
    add_experiment_args(p)
    add_run_options(p)
    p.set_defaults(func=cmd_ensemble)

    p = command(sub, "report", "compare runs: one ranked table per data set, written to a new folder",
                REPORT_EXAMPLES)
    p.add_argument("results", nargs="+", help="results folders of grid, cv, ensemble, or demo folders holding them "
                                              "(what `results/*` gives; other paths are skipped with a note)")
    p.add_argument("--output", help="folder to write comparison.csv, comparison.md and comparison.png into, new or "
                                    "empty (default: results/report-<time>)")
    p.add_argument("--html", action="store_true", help="also write report.html: one self-contained page of every "
                                                        "run, to look at and listen to")
    p.set_defaults(func=cmd_report)

    p = command(sub, "predict", "classify audio files with a saved model", PREDICT_EXAMPLES)
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="model.joblib from a results folder")
    model.add_argument("--onnx", help="a graph of `cli.py export` (its sidecar .json beside it), run with "
                                      "onnxruntime; the features are computed as with --model")
    p.add_argument("files", nargs="+", help="audio files; longer ones are classified by sliding windows")
    p.add_argument("--hop", type=float, default=0.5, help="window hop as a fraction of the clip length (0.5)")
    p.set_defaults(func=cmd_predict)

    p = command(sub, "export", "write a saved model as an ONNX graph from stored features to probabilities",
                EXPORT_EXAMPLES)
    p.add_argument("--model", required=True, help="model.joblib from a results folder")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="onnx (the only one)")
    p.add_argument("--output", help="the graph's path (default: model.onnx beside the model); the sidecar is "
                                    "OUTPUT.json")
    p.set_defaults(func=cmd_export)

    if config is not None:
        from pipelines.config import apply_config

        name, path, table = config
        apply_config(sub.choices[name], name, table, path)
    return parser


def user_errors():
    """The exceptions that mean bad input, reported in one line: every other one is a bug.

    The store's errors (:class:`FeatureStoreError`, its :class:`ParameterError` among them), bad
    command-line input (:class:`UsageError`), a ``--model`` that is not a model and a results folder
    that cannot be written or read. Imported only when something failed, so that listing stays fast.
    """
    from featurestore.errors import FeatureStoreError
    from pipelines.cluster import ClusterError
    from pipelines.config import ConfigError
    from pipelines.results import ResultsFolderError
    from pipelines.predict import ModelFileError
    from pipelines.tracking import TrackingError

    errors = (UsageError, FeatureStoreError, ClusterError, ModelFileError, ResultsFolderError, ConfigError,
              TrackingError)
    if "pipelines.export" in sys.modules:  # imported by export and predict --onnx only (the extra onnx)
        errors += (sys.modules["pipelines.export"].ExportError,)
    return errors


def read_config(argv):
    """``(command, path, table)`` of the ``--config`` file of ``argv`` (None without one)."""
    found = config_in(argv)
    if found is None:
        return None
    from pipelines.config import load_config

    command, path = found
    return command, path, load_config(path)


def quiet_broken_pipe():
    """Send the rest of stdout to devnull: its reader (``| head``) has gone, and Python would
    otherwise report a second BrokenPipeError when it flushes stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv=None):
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    try:
        parser = build_parser(config=read_config(argv))
    except Exception as exc:
        if "--debug" in argv or not isinstance(exc, user_errors()):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        if args.command in RUN_COMMANDS:
            found = config_in(argv)
            if args.config and (found is None or found[1] != args.config):
                raise UsageError(f"--config {args.config}: write the option in full, as --config FILE")
            args.record = run_record(args, argv)
        code = args.func(args) or 0
        sys.stdout.flush()  # a closed pipe shows here when the output was buffered
    except BrokenPipeError:
        quiet_broken_pipe()
        return 141  # 128 + SIGPIPE, what a shell reports for a program stopped by a closed pipe
    except KeyboardInterrupt:
        print("interrupted: what was computed is stored; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug or not isinstance(exc, user_errors()):
            raise  # a bug: its traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
