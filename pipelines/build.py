"""Build experiment pipelines from registry names: features from the store, then the model.

Every pipeline is ``ClipPipeline([("features", FeatureLoader(...)), ("model", estimator)])`` and takes
clip ids, so pipelines of different feature kinds mix in one ``VotingClassifier`` or
``StackingClassifier``; with stored augmented copies, its ``fit`` also trains on the copies of the
training clips (``augment_copies``). With ``sampler`` (or ``resample=True``) a ``sampler`` step between the
two resamples the training rows of classical models for class imbalance (``sampler=None|"over"|"under"|
"smote"``, see :mod:`estimators._sampling`), in fit only.
"""

import sys

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import BaseCrossValidator, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.metaestimators import available_if

import estimators
from estimators._sampling import SAMPLERS, ClassResampler
from featurestore.store import FeatureSet
from pipelines.evaluate import _fit_params
from pipelines.loader import ClipPipeline, FeatureLoader
from pipelines.segments import SegmentClassifier
from pipelines.splits import ClipSplitter

#: The deep half of the default ensemble and of the demo: the one place its name is written.
DEEP_DEFAULT = "cnn"
#: The sequence members of the default ensemble, over frames of MFCCs and their deltas (the SVM's
#: feature set, read frame by frame), a view of the clip that neither the SVM's summaries nor the
#: CNNs' images give: a TDNN (x-vector's dilated convolutions over time, the mean and standard
#: deviation of each channel over the clip) and a GRU. The TDNN replaced the LSTM: alone it scored
#: above the LSTM and the GRU on the demo and the spoken digits (below the two on the drum kits), and
#: the vote with it in the LSTM's place was higher on the demo and the spoken digits for every seed
#: compared, lower on the drum kits (the README's "The tdnn in the lstm's place").
SEQUENCE_DEFAULT = "tdnn"
SECOND_SEQUENCE_DEFAULT = "gru"
#: The second convolutional member of the default ensemble: PANNs' CNN6 (5 x 5 convolutions, average
#: pooling, the max + mean over time) on its own 64-band log-mel images. It replaced the crnn: its
#: errors overlap the cnn's about as much (the clips both get wrong: 10-23 %, against 9-25 % for the
#: crnn), but the vote with it was higher on every data set and seed compared (the README).
SECOND_CONV_DEFAULT = "cnn6"
#: ``cli.py ensemble`` without ``--estimators``: the best classical default, the best deep default,
#: cnn6, the tdnn and the gru, every net trained on every clip and voting its softmax as it is.
#: Measured soft votes of the members' saved out-of-fold probabilities (5-6 grouped folds, 1 torch
#: thread, the nets' seeds 0-4): 0.831, 0.831, 0.816, 0.825 and 0.831 on the demo, 0.815, 0.816,
#: 0.820, 0.808 and 0.823 on the drum kits, 0.889, 0.882, 0.878, 0.885 and 0.888 on the spoken
#: digits: 2.8 to 7.0 points above the best member, 4.6 (demo), 5.2 (drum kits) and 4.2 (spoken
#: digits) on average. With the lstm in the tdnn's place (svm + cnn + cnn6 + lstm + gru, the
#: previous default) 0.813, 0.824 and 0.866 on average, 3.2, 5.1 and 2.97 points above the best
#: member; with the tdnn in the gru's place 0.826, 0.818 and 0.881; with all six 0.811, 0.823 and
#: 0.879 (the README's "The tdnn in the lstm's place").
#: Those votes had the svm Platt-scaled; with its temperature scaling (the default since) the
#: seed-0 votes are 0.828, 0.814 and 0.889 (0.831, 0.815 and 0.889 with Platt scaling).
DEFAULT_ENSEMBLE = ("svm", DEEP_DEFAULT, SECOND_CONV_DEFAULT, SEQUENCE_DEFAULT, SECOND_SEQUENCE_DEFAULT)
#: How an ensemble calibrates the probabilities of its torch nets before a soft vote (see
#: :func:`make_ensemble`): ``"validation"`` (the default: each net fits a temperature on its own
#: validation split, no extra fit), ``"temperature"`` (a temperature fitted on 2 inner fits of each
#: training set, :func:`calibrated`) or ``"none"`` (as the net gives them).
CALIBRATIONS = ("validation", "temperature", "none")

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
                  vote="mean", augmented_set=None, augment_copies=None, sampler=None, resample=False, run_settings=None,
                  streaming="auto", **params):
    """A pipeline from clip ids to predictions.

    Parameters
    ----------
    estimator : str or estimator
        A registry name (built with ``params``) or an unfitted scikit-learn estimator (used as is,
        with ``params`` set).
    feature_set : FeatureSet or str
        The stored feature set its features come from; its sampling rate is the estimator's
        ``sr`` when its class declares that run setting.
    input : str, optional
        Input layout for the model (default: the registry's, or ``"flat"`` for an instance).
    segment_window : int, optional
        Wrap the model in a :class:`SegmentClassifier` with windows of this many time steps
        (frames, or samples for waveforms), ``segment_overlap`` and ``vote``.
    augmented_set : FeatureSet or str, optional
        Stored augmented copies of ``feature_set``'s clips (:func:`featurestore.extract_augmented`).
    augment_copies : int, optional
        Copies per training clip that ``fit`` adds (0: none; None: all stored copies).
    sampler : {None, "over", "under", "smote"}, optional
        Resampling of the training rows (features) for class imbalance, by a ``sampler`` step
        (:class:`~estimators._sampling.ClassResampler`, seeded with the run's ``random_state``)
        between the features and the model.
    resample : bool, default=False
        Add the ``sampler`` step even when ``sampler`` is None (it then does nothing), so that a
        grid can tune it as ``sampler`` (``sampler__kind``).
    streaming : {"auto", True, False}, default="auto"
        Whether the model gets its rows read on demand from the store (see
        :class:`~pipelines.loader.FeatureLoader`): "auto" when they exceed the memory budget.
    run_settings : dict, optional
        Settings of the run (``random_state``, ``device``, ``precision``, ``max_epochs``,
        ``n_threads``, ``sr``), set where the estimator's class declares them (:func:`estimators.run_params`); None
        values are skipped. ``params`` win over them.
    **params
        Parameters of the estimator, in its own names (``C=10``, ``hidden_size=50``).

    Returns
    -------
    pipelines.loader.ClipPipeline
        Steps ``features``, ``sampler`` (with ``sampler`` or ``resample``) and ``model``.
    """
    if isinstance(estimator, str):
        spec = estimators.get_spec(estimator)
        model = spec.build()
        input = input or spec.input
    else:
        model = estimator
        input = input or "flat"
    path = feature_set.path if isinstance(feature_set, FeatureSet) else feature_set
    settings = dict(run_settings or {})
    if path is not None:
        settings["sr"] = FeatureSet(path).audio["sr"]
    set_run_settings(model, **settings)
    estimators.set_checked_params(model, params, estimator if isinstance(estimator, str) else None)
    if segment_window:
        model = SegmentClassifier(model, window=int(segment_window), overlap=segment_overlap,
                                  time_axis=0 if input == "sequence" else -1, vote=vote)
    if isinstance(augmented_set, FeatureSet):
        augmented_set = augmented_set.path
    loader = FeatureLoader(None if path is None else str(path), input=input,
                           augmented_set=None if augmented_set is None else str(augmented_set), streaming=streaming)
    steps = [("features", loader), ("model", model)]
    if sampler is not None or resample:
        if segment_window:
            raise ValueError("sampler: resampling clips before segment voting is not supported (resampled rows "
                             "are feature rows, and window scores read the features without the sampler)")
        _check_sampler(model_of_steps(model), sampler, estimator if isinstance(estimator, str) else None)
        steps.insert(1, ("sampler", ClassResampler(sampler, random_state=settings.get("random_state"))))
    return ClipPipeline(steps, augment_copies=augment_copies)


def model_of(pipeline):
    """The estimator of a :func:`make_pipeline` pipeline (the one its SegmentClassifier wraps, if any)."""
    return model_of_steps(pipeline.named_steps["model"])


def model_of_steps(model):
    """``model``, or the estimator it wraps when it is a SegmentClassifier."""
    return model.estimator if isinstance(model, SegmentClassifier) else model


def is_torch_net(estimator):
    """Whether ``estimator`` is a skorch net (without importing torch when none was loaded)."""
    skorch = sys.modules.get("skorch")
    return skorch is not None and isinstance(estimator, skorch.NeuralNet)


def holds_validation_split(estimator):
    """Whether ``estimator``, a torch net, holds a validation split out of the clips it is fitted on.

    The net's own rule (``valid_fraction`` or ``train_split`` set): the spectrogram nets' recipe
    trains on every clip by default, the sequence nets hold a fifth out. False for any other model.
    """
    validates = getattr(estimator, "_validates", None)
    return is_torch_net(estimator) and validates is not None and validates()


def nets_to_calibrate(members, calibration):
    """Names of the ensemble members whose probabilities a soft vote temperature-scales.

    Parameters
    ----------
    members : list of (str, Pipeline)
    calibration : {"validation", "temperature", "none"}
        See :func:`make_ensemble`.

    Returns
    -------
    list of str
        On inner fits (``"temperature"``) every torch net; on validation splits (``"validation"``)
        the nets that hold one out (the waveform nets by default), since the spectrogram,
        recurrent and transformer nets train on every clip by default and vote their softmax as it
        is; none for ``"none"``.
    """
    if calibration == "none":
        return []
    return [name for name, pipeline in members if is_torch_net(model_of(pipeline))
            and (calibration != "validation" or holds_validation_split(model_of(pipeline)))]


def set_run_settings(estimator, **settings):
    """Set the run settings that ``estimator``'s class declares (None values skipped).

    ``estimator`` may be a :func:`make_pipeline` pipeline: its model is set. The sampling rate of
    a feature set (``sr``) is a property of the data, not a choice; torch nets on waveforms use it
    (pitch shifting of training batches, the learnable mel's filterbank, the targets of
    spectrogram forcing). Settings the class does not declare are left out on purpose: an SVM
    has no torch device, and XGBoost's own ``device`` is not a torch device.

    Returns
    -------
    estimator
    """
    model = model_of(estimator) if isinstance(estimator, ClipPipeline) else estimator
    declared = estimators.run_params(model)
    model.set_params(**{key: value for key, value in settings.items() if key in declared and value is not None})
    return estimator


def pipeline_params(pipeline, params, name=None):
    """Pipeline keys of ``params`` given as a user writes them, checked against the pipeline.

    A user names the estimator's own parameters (``C``, ``hidden_size``, ``module__*``), the
    pipeline's ``augment_copies``, the sampler step's ``sampler`` (``sampler__kind``) and, with segment voting, the :class:`SegmentClassifier`'s
    ``window``, ``overlap`` and ``vote``. The model's keys get the prefix of where
    :func:`make_pipeline` put it: ``model__``, or ``model__estimator__`` inside the
    SegmentClassifier.

    Parameters
    ----------
    pipeline : ClipPipeline
        Made by :func:`make_pipeline`.
    params : dict
        Parameters or a grid (``{name: [values]}``).
    name : str, optional
        The estimator's name for error messages.

    Raises
    ------
    ValueError
        For a name the estimator does not have, with a close match.
    """
    wrapper = pipeline.named_steps["model"]
    segmented = isinstance(wrapper, SegmentClassifier)
    own = {key: value for key, value in params.items()
           if key not in PIPELINE_PARAMS + ("sampler",) and not (segmented and key in SEGMENT_PARAMS)}
    estimators.check_params(model_of(pipeline), own, name,
                            others=PIPELINE_PARAMS + ("sampler",) + (SEGMENT_PARAMS if segmented else ()))
    if "sampler" in params:
        if "sampler" not in pipeline.named_steps:
            raise ValueError("sampler: this pipeline has no sampler step (make_pipeline(..., resample=True))")
        _check_sampler(model_of(pipeline), params["sampler"], name)
    prefix = "model__estimator__" if segmented else "model__"
    out = {}
    for key, value in params.items():
        if key in own:
            out[prefix + key] = value
        elif key in PIPELINE_PARAMS:
            out[key] = value
        elif key == "sampler":
            out["sampler__kind"] = value
        else:  # a parameter of the SegmentClassifier
            out[f"model__{key}"] = value
    return out


def _check_sampler(model, values, name=None):
    """ValueError for a ``sampler`` value that is not a sampler, or one given to a net.

    A net holds out validation rows of its training rows: resampled copies of a row would land on
    both sides. Nets balance their batches instead (``balanced_batches=True``).
    """
    is_net = any(cls.__name__ == "TorchClassifier" for cls in type(model).__mro__)  # no torch import
    for value in values if isinstance(values, list) else [values]:
        if value is not None and value not in SAMPLERS:
            raise ValueError(f"sampler={value!r} must be None or one of {', '.join(map(repr, SAMPLERS))}")
        if value is not None and is_net:
            raise ValueError(f"sampler={value!r} resamples the rows of classical models; "
                             f"{name or type(model).__name__} is a net: use balanced_batches=True")


def make_ensemble(members, method, clips, *, splitter=None, calibrate=(), calibration="validation",
                  calibration_splits=2):
    """Combine member pipelines (each with its own feature kind) into one classifier.

    Parameters
    ----------
    members : list of (str, Pipeline)
    method : {"soft", "hard", "stacking"}
        Soft or hard voting, or stacking: a logistic regression trained on the members' out-of-fold
        probabilities, computed with the data set's folds inside the training folds only.
    clips : pandas.DataFrame
        Clip table, for the inner folds of stacking and of calibration, and for the groups of each
        member's training clips (a member whose model takes ``groups`` is wrapped in a
        :class:`GroupedMember`).
    calibrate : collection of str
        Names of members whose probabilities are calibrated by temperature scaling before a soft vote:
        a net's softmax may be far more or less confident than the SVM's temperature-scaled probabilities,
        and would outvote it or be outvoted. Ignored by hard voting (labels only) and stacking (its
        final estimator learns how far to trust each member).
    calibration : {"validation", "temperature", "none"}
        How (one of :data:`CALIBRATIONS`): ``"validation"`` sets the member net's
        ``calibrate=True`` (:func:`validation_calibrated`: a temperature fitted on the validation
        split that the net holds out for early stopping, at no extra fit); ``"temperature"`` fits it
        on the out-of-fold probabilities of ``calibration_splits`` inner fits (:func:`calibrated`);
        ``"none"`` leaves every member's probabilities as they are. The member's predicted class
        stays its own. A net that holds no validation split out (the spectrogram nets' default) cannot
        be calibrated on one: :func:`nets_to_calibrate` leaves it out. Measured soft votes of svm, cnn
        and lstm (the lstm on the 40 MFCCs alone, before its deltas, and the cnn with its validation
        split, before it trained on every clip; 5-6 grouped folds, 1 torch thread), validation
        against temperature: demo 0.762 against 0.734, drum kits 0.795 against 0.787, spoken digits
        0.785 against 0.767, for a third of the nets' fits (see the README's measured section).
    calibration_splits : int
        Inner splits of ``calibration="temperature"`` (see :func:`calibrated`).

    Returns
    -------
    VotingClassifier or StackingClassifier
        Its fitted members (``named_estimators_``) give their own predictions: an experiment scores
        them in the same folds, next to the ensemble, without training them again.
    """
    unknown = set(calibrate) - {name for name, _ in members}
    if unknown:
        raise ValueError(f"calibrate names {sorted(unknown)}, which are not members {[n for n, _ in members]}")
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration={calibration!r} must be one of {', '.join(CALIBRATIONS)}")
    if method == "soft" and calibration == "validation":  # set on the net before any wrapping
        members = [(name, validation_calibrated(pipeline, name) if name in calibrate else pipeline)
                   for name, pipeline in members]
    # scikit-learn's ensembles and calibration pass no groups to their estimators: each member looks
    # its training clips' groups up itself, for its validation split or inner selection
    members = [(name, GroupedMember(pipeline, clips) if _fit_params(pipeline, None) else pipeline)
               for name, pipeline in members]
    if method in ("soft", "hard"):
        if method == "soft" and calibration == "temperature":
            members = [(name, calibrated(pipeline, clips, n_splits=calibration_splits) if name in calibrate
                        else pipeline) for name, pipeline in members]
        return VotingClassifier(members, voting=method)
    if method == "stacking":
        inner = splitter if splitter is not None else ClipSplitter(clips)
        return StackingClassifier(members, final_estimator=LogisticRegression(max_iter=1000), cv=inner,
                                  stack_method="predict_proba")
    raise ValueError(f"ensemble method {method!r} must be one of soft, hard, stacking")


class GroupedMember(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A member pipeline of an ensemble, fitted with the groups of its training clips.

    ``VotingClassifier``, ``StackingClassifier`` and ``CalibratedClassifierCV`` give their estimators
    ``X`` and ``y`` only (without scikit-learn's metadata routing). Without groups, a member net's
    validation split and a classical member's inner selection (of ``C``, ``gamma``) would put clips
    of one recording, speaker or kit on both sides, and choose the epoch or the parameters on
    clips whose group the model has seen. This wrapper looks the groups of the clip ids it is
    fitted on up in the clip table and passes them as ``cross_validate`` does (``model__groups``).

    Parameters
    ----------
    pipeline : Pipeline
        A :func:`make_pipeline` pipeline (clip ids in).
    clips : pandas.DataFrame
        The clip table (``clip_id``, ``group``).

    Attributes
    ----------
    pipeline_ : Pipeline
        The fitted clone of ``pipeline``.
    classes_ : np.ndarray [shape=(n_classes,)]
    """

    def __init__(self, pipeline, clips):
        self.pipeline = pipeline
        self.clips = clips

    def fit(self, X, y):
        """Fit a clone of ``pipeline`` on clip ids ``X`` (shape ``(n,)``) with their groups."""
        groups = ClipSplitter(self.clips)._rows(X)["group"].to_numpy()
        pipeline = clone(self.pipeline)
        self.pipeline_ = pipeline.fit(X, y, **_fit_params(pipeline, groups))
        self.classes_ = self.pipeline_.classes_
        return self

    def predict(self, X):
        return self.pipeline_.predict(X)

    @available_if(lambda self: hasattr(self.pipeline, "predict_proba"))
    def predict_proba(self, X):
        return self.pipeline_.predict_proba(X)


_OTHER_CALIBRATIONS = "calibrate it on inner fits (calibration='temperature') or not at all (calibration='none')"


def validation_calibrated(pipeline, name):
    """A clone of ``pipeline`` whose torch net fits a temperature on its own validation split.

    The net's ``calibrate=True`` (:class:`~estimators._calibrate.TemperatureScaling`): after early
    stopping has restored the best epoch, one temperature is fitted on the clips the net held out
    (grouped, as its ``groups`` give them). No other fit is needed.

    Parameters
    ----------
    pipeline : Pipeline or estimator
        A :func:`make_pipeline` pipeline of a torch net, or the net itself.
    name : str
        The member's name, for the error.

    Returns
    -------
    Pipeline or estimator
        The clone, its net set to ``calibrate=True``.

    Raises
    ------
    ValueError
        When the model is not a net with a validation split to calibrate on.
    """
    pipeline = clone(pipeline)
    model = model_of(pipeline) if isinstance(pipeline, Pipeline) else pipeline
    if not is_torch_net(model) or "calibrate" not in model.get_params(deep=False):
        raise ValueError(f"member {name!r} ({type(model).__name__}) has no validation split to calibrate "
                         f"on (only torch nets hold one out): {_OTHER_CALIBRATIONS}")
    if not holds_validation_split(model):
        raise ValueError(f"member {name!r} holds out no validation split (valid_fraction="
                         f"{model.valid_fraction!r}) to calibrate on: {_OTHER_CALIBRATIONS}")
    model.set_params(calibrate=True)
    return pipeline


def calibrated(pipeline, clips, *, n_splits=2):
    """``pipeline`` with temperature-scaled probabilities, fitted on its training clips only.

    ``CalibratedClassifierCV(pipeline, method="temperature", ensemble=False)`` on
    :class:`FoldGroupSplits` of the training clips: one temperature is fitted on the out-of-fold
    probabilities of ``n_splits`` inner fits (each on part of the training folds), and the model
    that predicts is ``pipeline`` fitted once on all training clips. A temperature divides the
    logits, so the predicted class, and the member's accuracy, stay those of ``pipeline``; the
    calibration costs ``n_splits`` smaller fits.

    Parameters
    ----------
    pipeline : Pipeline
        A :func:`make_pipeline` pipeline (clip ids in, ``predict_proba`` out).
    clips : pandas.DataFrame
        The clip table (``clip_id``, ``fold``, ``group``) the inner splits look clips up in.
    n_splits : int >= 2

    Returns
    -------
    sklearn.calibration.CalibratedClassifierCV
    """
    return CalibratedClassifierCV(pipeline, method="temperature", cv=FoldGroupSplits(clips, n_splits=n_splits),
                                  ensemble=False)


class FoldGroupSplits(BaseCrossValidator):
    """``n_splits`` splits of clip ids that keep each fold (or, without folds, each group) on one side.

    A partition of whatever clips ``split`` is given, as ``cross_val_predict`` requires: given the
    training clips of an outer split, its test sets together hold every training clip once and never
    a clip of the outer test fold (those are not among ``X``). Folds (or groups) are dealt to the
    splits by scikit-learn's ``GroupKFold``.

    Parameters
    ----------
    clips : pandas.DataFrame
        The clip table: ``clip_id``, ``fold`` (may be missing), ``group``.
    n_splits : int >= 2
    """

    def __init__(self, clips, *, n_splits=2):
        self.clips = clips
        self.n_splits = n_splits

    def get_n_splits(self, X=None, y=None, groups=None):
        return self.n_splits

    def split(self, X, y=None, groups=None):
        rows = ClipSplitter(self.clips)._rows(X)
        column = "fold" if rows["fold"].notna().all() else "group"
        units = rows[column].astype(str).to_numpy()
        if len(np.unique(units)) < self.n_splits:
            raise ValueError(f"calibration needs {self.n_splits} {column}s among the training clips to split "
                             f"them, not {len(np.unique(units))}")
        yield from GroupKFold(self.n_splits).split(units, groups=units)


def clips_in(dataset, *feature_sets):
    """The clip table restricted to clips present in every feature set (skipped clips dropped)."""
    keep = set(dataset.clips["clip_id"])
    for fs in feature_sets:
        keep &= set(fs.clip_ids.tolist())
    return dataset.clips[dataset.clips["clip_id"].isin(keep)].reset_index(drop=True)
