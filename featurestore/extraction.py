"""Extraction: decode each clip once, compute every requested feature kind, store the results.

Clips are processed in batches of equal-length audio, so each feature kind is computed for a whole
batch at once; batches run in parallel worker processes (joblib), and the single writer (this
process) stores each batch as soon as it arrives, which makes an interrupted extraction resumable.

:func:`extract_augmented` computes augmented copies of the clips the same way: each batch is decoded
once, every clip gets ``copies`` augmented versions, and every feature kind is computed from those
same augmented waveforms.

Before any writer starts, every setting is checked and every feature kind is computed once on a
silent clip, so that a bad parameter leaves nothing in the store. A stored set is read in full and
checked against its checksums before it is reused; a damaged one is extracted again and replaced
(with a warning). A clip skipped because its file could not be read (permissions, I/O) is retried by
the next extraction, which extends the stored set with it.
"""

import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager, nullcontext
from itertools import islice

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs, parallel_config
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from featurestore import audio as audio_io
from featurestore import features
from featurestore.augment import WaveformAugmentation, copy_rng
from featurestore.errors import AudioError, CorruptFeatureSetError, ParameterError
from featurestore.features._common import is_int as _is_int
from featurestore.store import STORAGE_DTYPES, FeatureStore, augmented_id


def resolve_audio_params(dataset, overrides=None):
    """The audio settings of an extraction: library defaults < data set defaults < ``overrides``."""
    params = {**audio_io.AUDIO_DEFAULTS, **dataset.audio_defaults}
    for name, value in (overrides or {}).items():
        if name not in params:
            raise ParameterError(features._unknown("audio parameter", name, params))
        params[name] = value
    audio_io.check_audio_params(**params)
    return params


def normalise_kinds(kinds):
    """``["mel", "mfcc"]`` or ``{"mel": {"n_mels": 128}}`` -> ``{kind: full params}``."""
    if isinstance(kinds, str):
        kinds = [kinds]
    if not isinstance(kinds, dict):
        kinds = {kind: {} for kind in kinds}
    if not kinds:
        raise ParameterError("no feature kind requested")
    return {kind: features.resolve_params(kind, overrides) for kind, overrides in kinds.items()}


def extract(dataset, kinds, *, store=None, audio=None, n_jobs=1, batch_size=32, skip_bad=False,
            dtype="float32", backend="threading", progress=True):
    """Compute feature sets of ``dataset`` into the store, or find them there.

    Parameters
    ----------
    dataset : featurestore.datasets.Dataset
    kinds : list of str or dict
        Feature kinds, or ``{kind: parameter overrides}``.
    store : FeatureStore, optional
        Defaults to the store at :func:`featurestore.store.default_root`.
    audio : dict, optional
        Overrides of the audio settings (``sr``, ``duration``, ``pad_mode``, ``normalize``).
    n_jobs : int
        Parallel workers (joblib semantics: -1 = all cores).
    batch_size : int
        Clips per batch (per task).
    skip_bad : bool
        When False, an unusable audio file stops the extraction with an :class:`AudioError` naming
        it (after storing every batch already computed). When True it is skipped, recorded in the
        feature set's ``skipped`` attribute, and never stored.
    dtype : {"float32", "float16"}
        Storage dtype; reads always return float32.
    backend : {"threading", "loky", "dask"}
        joblib backend of the workers. Threads are the default: decoding (libsndfile), resampling
        (soxr), FFTs (scipy) and matrix products release the GIL, and threads cost no process
        start-up nor copies of the results; "loky" uses worker processes. "dask" runs the batches on the
        workers of the current ``dask.distributed`` client (see :mod:`pipelines.cluster`); each batch's
        features come back to this process, the single writer.
    progress : bool
        Show a progress bar with clips per second.

    Returns
    -------
    dict
        ``{kind: FeatureSet}``.
    """
    return _extract(dataset, kinds, None, store=store, audio=audio, n_jobs=n_jobs, batch_size=batch_size,
                    skip_bad=skip_bad, dtype=dtype, backend=backend, progress=progress)


def extract_augmented(dataset, kinds, augmentation, *, copies=1, seed=0, store=None, audio=None, n_jobs=1,
                      batch_size=32, skip_bad=False, dtype="float32", backend="threading", progress=True):
    """Compute augmented copies of ``dataset``'s clips into the store, or find them there.

    Each clip gets ``copies`` augmented versions, made from its decoded audio (with the same audio
    settings as :func:`extract`) and featurised like the clip itself. They are a feature set of their
    own per kind, keyed by the main set's parameters, the augmentation, ``copies`` and ``seed``:
    computed once, reused, and independent of the main set. Row ``"<clip_id>#aug<k>"`` is copy ``k``
    (1 .. ``copies``) of clip ``clip_id``; the set records each row's source clip and copy number
    (:attr:`FeatureSet.sources`, :attr:`FeatureSet.copy_index`, :meth:`FeatureSet.augmented_rows`).
    The random draws of copy ``k`` of a clip come from ``(seed, clip_id, k)`` alone
    (:func:`featurestore.augment.copy_rng`), so they do not depend on ``batch_size``, ``n_jobs`` or
    the other clips.

    Parameters
    ----------
    dataset, kinds, store, audio, n_jobs, batch_size, skip_bad, dtype, backend, progress
        As for :func:`extract`; ``batch_size`` counts source clips.
    augmentation : featurestore.augment.WaveformAugmentation
        Bounds of the random augmentation; it must not be the identity.
    copies : int >= 1
        Augmented copies per clip.
    seed : int >= 0

    Returns
    -------
    dict
        ``{kind: FeatureSet}`` of augmented copies.
    """
    if not isinstance(augmentation, WaveformAugmentation):
        raise ParameterError(f"augmentation={augmentation!r} must be a WaveformAugmentation")
    if augmentation.is_identity:
        raise ParameterError("augmentation has every bound off (time_stretch, pitch_shift, noise_snr, gain_db, "
                             "time_shift): its copies would equal their clips")
    if not _is_int(copies) or copies < 1:
        raise ParameterError(f"copies={copies!r} must be a positive integer")
    if not _is_int(seed) or seed < 0:
        raise ParameterError(f"seed={seed!r} must be an integer >= 0")
    augment = {**augmentation.params(), "copies": int(copies), "seed": int(seed)}
    return _extract(dataset, kinds, augment, store=store, audio=audio, n_jobs=n_jobs, batch_size=batch_size,
                    skip_bad=skip_bad, dtype=dtype, backend=backend, progress=progress)


def augmented_table(table, copies):
    """The clip table of augmented copies: ``copies`` rows per clip of ``table``.

    Each row is ``clip_id`` ``"<source>#aug<k>"``, ``source_id``, ``copy`` (k = 1 .. copies), then the
    source's other columns (path, label, fold, group), grouped by source clip.
    """
    rows = table.loc[table.index.repeat(copies)].reset_index(drop=True)
    rows.insert(1, "source_id", rows["clip_id"])
    rows.insert(2, "copy", np.tile(np.arange(1, copies + 1), len(table)))
    rows["clip_id"] = [augmented_id(c, k) for c, k in zip(rows["source_id"], rows["copy"])]
    return rows


BACKENDS = ("threading", "loky", "dask")


def _extract(dataset, kinds, augment, *, store, audio, n_jobs, batch_size, skip_bad, dtype, backend, progress):
    check_run_settings(n_jobs=n_jobs, batch_size=batch_size, dtype=dtype, backend=backend)
    store = store if store is not None else FeatureStore()
    kinds = normalise_kinds(kinds)
    audio = resolve_audio_params(dataset, audio)
    stored = {}
    for kind, params in kinds.items():
        stored[kind] = _stored_set(store, dataset, kind, params, audio, dtype, augment)
    result = {kind: fs for kind, fs in stored.items() if fs is not None and not fs.retryable}
    todo = {kind: params for kind, params in kinds.items() if kind not in result}
    if not todo:
        return result
    check_kinds(todo, audio)
    table = dataset.describe_table()
    copies = augment["copies"] if augment else 0
    if augment:
        table = augmented_table(table, copies)
    with ExitStack() as stack:
        writers = {kind: stack.enter_context(store.writer(dataset, kind, params, audio, dtype, augment,
                                                          base=stored[kind]))
                   for kind, params in todo.items()}
        done = {kind: writer.done() for kind, writer in writers.items()}
        # a clip is pending while any of its rows (itself, or its copies) is missing from any set
        rows_of = (lambda c: [augmented_id(c, k) for k in range(1, copies + 1)]) if augment else (lambda c: [c])
        pending = dataset.clips[[any(r not in d for d in done.values() for r in rows_of(c))
                                 for c in dataset.clips["clip_id"]]]
        if len(pending):
            label = f"{dataset.name}: {', '.join(todo)}"
            if augment:
                label += f", {copies} augmented cop{'y' if copies == 1 else 'ies'} per clip"
            _run(pending, todo, audio, writers, done, augment=augment, n_jobs=n_jobs, batch_size=int(batch_size),
                 skip_bad=skip_bad, backend=backend, progress=progress, label=label)
        for kind, writer in writers.items():
            result[kind] = writer.finalize(table)
    return result


def check_run_settings(*, n_jobs, batch_size, dtype, backend):
    """Check an extraction's settings; :class:`ParameterError` naming the first bad one."""
    if dtype not in STORAGE_DTYPES:
        raise ParameterError(f"dtype={dtype!r} must be one of {', '.join(STORAGE_DTYPES)}")
    if not _is_int(batch_size) or batch_size < 1:
        raise ParameterError(f"batch_size={batch_size!r} must be a positive integer")
    if not _is_int(n_jobs) or n_jobs == 0:
        raise ParameterError(f"n_jobs={n_jobs!r} must be a non-zero integer (-1: one worker per core)")
    if backend not in BACKENDS:
        raise ParameterError(f"backend={backend!r} must be one of {', '.join(BACKENDS)}")


def check_kinds(kinds, audio):
    """Compute each feature kind on one silent clip, so that a bad parameter fails before any writer starts.

    The kinds check their parameters when they compute; one clip of silence costs milliseconds.

    Parameters
    ----------
    kinds : dict
        ``{kind: full params}``.
    audio : dict
        Resolved audio settings; a clip of ``duration`` seconds (1 s when None) at ``sr``.
    """
    silence = np.zeros((1, round(audio["sr"] * (audio["duration"] or 1.0))), dtype=np.float32)
    memo = features.Memo()
    for kind, params in kinds.items():
        features.get(kind).compute(silence, sr=audio["sr"], memo=memo, **params)


def _stored_set(store, dataset, kind, params, audio, dtype, augment):
    """The stored set of these parameters, checked in full; None when absent or damaged (with a warning)."""
    try:
        fs = store.get(dataset, kind, params, audio, dtype, augment)
        return fs.verify() if fs is not None else None
    except CorruptFeatureSetError as exc:
        # stacklevel: the caller of extract() or extract_augmented()
        warnings.warn(f"feature set {exc.path} is damaged ({exc.problem}); extracting it again to replace it",
                      stacklevel=4)
        return None


def _run(pending, kinds, audio, writers, done, *, augment, n_jobs, batch_size, skip_bad, backend, progress,
         label):
    ids = pending["clip_id"].tolist()
    paths = pending["path"].tolist()
    batches = [(ids[i:i + batch_size], paths[i:i + batch_size]) for i in range(0, len(ids), batch_size)]
    calls = [(compute_batch, b_ids, b_paths, kinds, audio, augment) for b_ids, b_paths in batches]
    n_rows = len(ids) * (augment["copies"] if augment else 1)
    first_error = None
    # One BLAS thread per worker: the parallelism comes from the workers (loky limits its processes
    # itself; threads share this process's setting).
    limits = threadpool_limits(1) if backend == "threading" else nullcontext()
    # parallel_config, not Parallel(backend=...): it also loads the optional "dask" backend
    with limits, parallel_config(backend=backend), tqdm(total=n_rows, desc=label, unit="clip", smoothing=0.1,
                                                        mininterval=0.5, disable=not progress) as bar, \
            _results(calls, n_jobs, backend) as results:
        for batch_ids, values, failures in results:
            if failures and not skip_bad and first_error is None:
                first_error = failures[0]
            skipped = failures if skip_bad else []
            for kind, writer in writers.items():
                keep = [i for i, c in enumerate(batch_ids) if c not in done[kind]]
                fresh_skips = [s for s in skipped if s["clip_id"] not in done[kind]]
                if keep or fresh_skips:
                    writer.write_batch([batch_ids[i] for i in keep], values[kind][keep], fresh_skips)
            bar.update(len(batch_ids) + len(failures))
            if first_error is not None:
                break  # everything computed so far is stored; the rest is not started
    if first_error is not None:
        raise AudioError(first_error["path"], f"{first_error['reason']} (extraction stopped; batches already "
                                              f"computed are kept; pass --skip-bad to skip unusable files)")


@contextmanager
def _results(calls, n_jobs, backend):
    """The results of ``calls`` (``(function, *args)``) as they finish, on ``backend``'s workers.

    However the block ends (an error, Ctrl-C), no call is running once it has. Threads are this
    module's own pool, which cancels the queued calls and waits for the running ones: a thread still
    inside C code when the interpreter exits aborts the process (SIGABRT), and joblib's threads are
    not joined when it gives up. One worker runs the calls in this thread. The other backends are
    joblib's (worker processes, Dask workers).
    """
    if backend != "threading":
        results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(delayed(f)(*a) for f, *a in calls)
        try:
            yield results
        finally:
            results.close()
        return
    n_workers = effective_n_jobs(n_jobs)
    if n_workers == 1:
        yield (f(*a) for f, *a in calls)
        return
    pool = ThreadPoolExecutor(n_workers, thread_name_prefix="featurestore-extract")
    try:
        yield _as_completed(pool, calls, max_running=2 * n_workers)
    finally:
        _join(pool)


def _as_completed(pool, calls, *, max_running):
    """Submit ``calls`` to ``pool``, at most ``max_running`` at a time; yield their results as they finish."""
    calls = iter(calls)
    running = {pool.submit(*call) for call in islice(calls, max_running)}
    while running:
        finished, running = wait(running, return_when=FIRST_COMPLETED)
        running |= {pool.submit(*call) for call in islice(calls, len(finished))}
        for future in finished:
            yield future.result()


def _join(pool):
    """Cancel ``pool``'s queued calls and wait for its running ones, through further Ctrl-C too."""
    while True:
        try:
            pool.shutdown(wait=True, cancel_futures=True)
            return
        except KeyboardInterrupt:
            continue  # leaving before the threads end would abort the process at exit


def compute_batch(clip_ids, paths, kinds, audio, augment=None):
    """Decode a batch of clips and compute every feature kind for it (runs in a worker).

    Parameters
    ----------
    clip_ids, paths : list of str
    kinds : dict
        ``{kind: full params}``.
    audio : dict
        Audio settings for :func:`featurestore.audio.load_clip`.
    augment : dict, optional
        ``{**WaveformAugmentation.params(), "copies", "seed"}``: compute the features of ``copies``
        augmented versions of each clip (rows ``"<clip_id>#aug<k>"``) instead of the clips'.

    Returns
    -------
    ok_ids : list of str
        Rows computed (clips, or their copies), in input order.
    values : dict
        ``{kind: np.ndarray [shape=(len(ok_ids), *feature_shape)], float32}``.
    failures : list of dict
        ``{"clip_id", "path", "reason", "reason_kind"}`` for rows that could not be used;
        ``reason_kind`` is "transient" when the file could not be read (it may pass), else "permanent".
    """
    signals, ok_ids, failures, path_of = [], [], [], {}
    if augment:
        copies = augment["copies"]
        augmentation = WaveformAugmentation(**{k: v for k, v in augment.items() if k not in ("copies", "seed")})
    for clip_id, path in zip(clip_ids, paths):
        rows = [augmented_id(clip_id, k) for k in range(1, copies + 1)] if augment else [clip_id]
        try:
            y = audio_io.load_clip(path, **audio)
        except AudioError as exc:
            reason, reason_kind = why_unusable(exc)
            failures.extend({"clip_id": row, "path": exc.path, "reason": reason, "reason_kind": reason_kind}
                            for row in rows)
            continue
        if augment:
            signals.extend(augmentation.apply(y, audio["sr"], copy_rng(augment["seed"], clip_id, k))
                           for k in range(1, copies + 1))
        else:
            signals.append(y)
        ok_ids.extend(rows)
        path_of.update((row, path) for row in rows)
    if audio["duration"] is None and len({len(s) for s in signals}) > 1:
        raise ParameterError("audio duration=None needs clips of equal length; set a duration")
    batch = np.stack(signals) if signals else np.zeros((0, 0), np.float32)
    values = {}
    memo = features.Memo()  # e.g. mel and mfcc of this batch share their log-mel spectrogram
    for kind, params in kinds.items():
        values[kind] = features.get(kind).compute(batch, sr=audio["sr"], memo=memo, **params) if len(batch) else None
    if len(batch):
        # A clip whose features are not finite is unusable too; never store garbage.
        finite = np.all([np.isfinite(v.reshape(len(batch), -1)).all(axis=1) for v in values.values()], axis=0)
        for i in np.flatnonzero(~finite)[::-1]:
            failures.append({"clip_id": ok_ids[i], "path": path_of[ok_ids[i]],
                             "reason": "features contain NaN or infinite values", "reason_kind": "permanent"})
            del ok_ids[i]
        values = {kind: v[finite] for kind, v in values.items()}
    else:
        values = {kind: np.zeros((0,), np.float32) for kind in kinds}
    return ok_ids, values, failures


def why_unusable(exc):
    """Why a file is unusable, and whether that may pass: ``(reason, reason_kind)``.

    The reason is "transient" when the operating system cannot read the file (permissions, an I/O
    error, a file gone): it may pass, so the next extraction retries it. libsndfile reports such
    failures as "System error."; the file is read here to give the operating system's reason.
    Anything else is about the file's content (not audio, empty, non-finite) and "permanent".

    Parameters
    ----------
    exc : AudioError

    Returns
    -------
    reason : str
    reason_kind : {"transient", "permanent"}
    """
    try:
        with open(exc.path, "rb") as f:
            while f.read(1 << 20):
                pass
    except OSError as os_error:
        return f"cannot read the file: {os_error.strerror or os_error} (may pass: retried by the next run)", "transient"
    return exc.problem, "permanent"
