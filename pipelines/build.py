"""Build experiment pipelines from registry names: features from the store, then the model.

Every pipeline is ``ClipPipeline([("features", FeatureLoader(...)), ("model", estimator)])`` and takes
clip ids, so pipelines of different feature kinds mix in one ``VotingClassifier`` or
``StackingClassifier``; with stored augmented copies, its ``fit`` also trains on the copies of the
training clips (``augment_copies``).
"""

from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression

import estimators
from featurestore.store import FeatureSet
from pipelines.loader import ClipPipeline, FeatureLoader
from pipelines.segments import SegmentClassifier
from pipelines.splits import ClipSplitter

SEGMENT_PARAMS = ("window", "overlap", "vote")
PIPELINE_PARAMS = ("augment_copies",)  # parameters of the pipeline itself, not of a step


def feature_params_for(name, kind=None, overrides=None):
    """Feature kind and parameter overrides for estimator ``name``.

    The estimator's default feature parameters apply only to its default kind; ``overrides`` win.

    Returns
    -------
    kind : str
    params : dict
    """
    spec = estimators.get_spec(name)
    kind = kind or spec.feature
    params = dict(spec.feature_params) if kind == spec.feature else {}
    params.update(overrides or {})
    return kind, params


def make_pipeline(estimator, feature_set, *, input=None, segment_window=None, segment_overlap=0.5,
                  vote="mean", augmented_set=None, augment_copies=None, **params):
    """A pipeline from clip ids to predictions.

    Parameters
    ----------
    estimator : str or estimator
        A registry name (built with ``params``) or an unfitted scikit-learn estimator.
    feature_set : FeatureSet or str
        The stored feature set its features come from.
    input : str, optional
        Input layout for the model (default: the registry's, or ``"flat"`` for an instance).
    segment_window : int, optional
        Wrap the model in a :class:`SegmentClassifier` with windows of this many time steps
        (frames, or samples for waveforms), ``segment_overlap`` and ``vote``.
    augmented_set : FeatureSet or str, optional
        Stored augmented copies of ``feature_set``'s clips (:func:`featurestore.extract_augmented`).
    augment_copies : int, optional
        Copies per training clip that ``fit`` adds (0: none; None: all stored copies).
    **params
        Parameters of the registry estimator.

    Returns
    -------
    pipelines.loader.ClipPipeline
        Steps ``features`` and ``model``.
    """
    if isinstance(estimator, str):
        spec = estimators.get_spec(estimator)
        model = spec.build(**params)
        input = input or spec.input
    else:
        model = estimator
        input = input or "flat"
    if segment_window:
        model = SegmentClassifier(model, window=int(segment_window), overlap=segment_overlap,
                                  time_axis=0 if input == "sequence" else -1, vote=vote)
    path = feature_set.path if isinstance(feature_set, FeatureSet) else feature_set
    if isinstance(augmented_set, FeatureSet):
        augmented_set = augmented_set.path
    loader = FeatureLoader(None if path is None else str(path), input=input,
                           augmented_set=None if augmented_set is None else str(augmented_set))
    pipeline = ClipPipeline([("features", loader), ("model", model)], augment_copies=augment_copies)
    if path is not None:
        set_sample_rate(pipeline, FeatureSet(path).audio["sr"])
    return pipeline


def set_sample_rate(pipeline, sr):
    """Tell the model the sampling rate of its waveforms: its ``sr`` parameter, when it has one.

    Torch nets on waveforms take ``sr`` (pitch shifting of training batches, the learnable mel's
    filterbank, the targets of spectrogram forcing). It is a property of the feature set, not a
    choice, so it is set from the set's audio settings rather than left at its default.
    """
    names = {"model__sr", "model__estimator__sr"} & set(pipeline.get_params())
    pipeline.set_params(**{name: sr for name in names})
    return pipeline


def prefix_params(pipeline, params):
    """Map estimator-level keys (``module__hidden_size``, ``C``) to pipeline keys.

    Keys that already start with a step name (``model__``, ``features__``) and the pipeline's own
    ``augment_copies`` are kept. With segment voting, ``window``/``overlap``/``vote`` address the
    wrapper and other keys the wrapped model.
    """
    segmented = isinstance(pipeline.named_steps["model"], SegmentClassifier)
    out = {}
    for key, value in params.items():
        if key.split("__")[0] in pipeline.named_steps or key in PIPELINE_PARAMS:
            out[key] = value
        elif segmented and key not in SEGMENT_PARAMS:
            out[f"model__estimator__{key}"] = value
        else:
            out[f"model__{key}"] = value
    return out


def make_ensemble(members, method, clips, *, splitter=None):
    """Combine member pipelines (each with its own feature kind) into one classifier.

    Parameters
    ----------
    members : list of (str, Pipeline)
    method : {"soft", "hard", "stacking"}
        Soft or hard voting, or stacking: a logistic regression trained on the members' out-of-fold
        probabilities, computed with the data set's folds inside the training folds only.
    clips : pandas.DataFrame
        Clip table, for the inner folds of stacking.
    """
    if method in ("soft", "hard"):
        return VotingClassifier(members, voting=method)
    if method == "stacking":
        inner = splitter if splitter is not None else ClipSplitter(clips)
        return StackingClassifier(members, final_estimator=LogisticRegression(max_iter=1000), cv=inner,
                                  stack_method="predict_proba")
    raise ValueError(f"ensemble method {method!r} must be one of soft, hard, stacking")


def clips_in(dataset, *feature_sets):
    """The clip table restricted to clips present in every feature set (skipped clips dropped)."""
    keep = set(dataset.clips["clip_id"])
    for fs in feature_sets:
        keep &= set(fs.clip_ids.tolist())
    return dataset.clips[dataset.clips["clip_id"].isin(keep)].reset_index(drop=True)
