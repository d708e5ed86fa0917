"""Support vector machine with an RBF kernel on MFCC + delta summaries, C selected in ``fit``.

The default features are the mean and standard deviation over time of 40 MFCCs and their first
and second deltas (the ``mfcc`` kind with ``deltas=2``: 240 features). Measured on real recordings
(see ``benchmarks/recipes.py`` and the README), the deltas are what lifts the score over the
hand-written MFCC mean/std script; adding the minimum and maximum (``features="summary"``) did
not help on average.

``C`` depends on the data, so by default (``C=None``) ``fit`` selects it from ``C_grid`` by a
cross-validation on the training clips only, grouped by the ``groups`` passed to ``fit`` (see
:func:`~estimators._classical.inner_splits`); the selected value is ``C_``. ``gamma`` works the
same way (``gamma=None`` selects from ``gamma_grid``); its default stays ``"scale"``
(``1 / n_features`` on standardised features), which selection did not beat.

Probabilities (for soft voting and stacking) come from temperature scaling of out-of-fold
decision values, ``CalibratedClassifierCV(SVC(), method="temperature", ensemble=False)``, on the
same inner splits as the selection: one scalar ``T`` for all classes, so ``predict`` (the argmax
of ``predict_proba``) keeps the SVC's ranking of the classes (its one-vs-one votes, ties broken by
the decision values). One-vs-rest Platt scaling (``calibration="sigmoid"``, the default before)
fits two parameters per class on a handful of out-of-fold values, and with few clips per class
its per-class sigmoids reorder the classes: on 400 spoken clips of 50 classes (8 per class;
digit x speaker from FSDD, 5 grouped folds) Platt's argmax scored 0.748 where temperature
scaling scored 0.965 (log loss 1.507 against 0.418). Where classes have many clips the two are
close (accuracy, Platt / temperature: demo 0.722 / 0.719, spoken digits 0.617 / 0.631, drum kits
0.729 / 0.749; the README's measured section). Calibration needs no more clips per class than
the selection does: the splits shrink to the smallest class (at least 2 clips), where a fixed
``cv=5`` failed on 8 clips per class split by recording.
"""

from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from estimators._classical import ClassicalClassifier, FeatureReshaper, inner_splits, select_params

SPEC = {
    "class": "SVMClassifier",
    "input": "flat",
    "feature": "mfcc",
    "feature_params": {"deltas": 2},
    "param_grid": {"features": ["stats", "summary"], "C": [None, 10.0]},
    "test_params": {},
    "test_shape": (4, 10),
    "description": "RBF SVM on MFCC + delta mean and std, C selected by grouped inner CV, temperature-scaled",
}

#: ``calibration`` values: ``CalibratedClassifierCV``'s methods that keep working with 2 clips per
#: class in an inner split (isotonic regression needs many more).
CALIBRATIONS = ("temperature", "sigmoid")


class SVMClassifier(ClassicalClassifier):
    """An SVC on standardised feature vectors, with ``C`` selected in ``fit`` and calibrated.

    Fits ``FeatureReshaper(mode=features) -> StandardScaler -> CalibratedClassifierCV(SVC(C=C_,
    kernel=kernel, gamma=gamma_), method=calibration, cv=<inner splits>, ensemble=False)``.

    Parameters
    ----------
    C : float > 0 or None, default=None
        SVC's regularisation parameter (larger: less regularised). None selects it from
        ``C_grid`` by inner cross-validation on the training clips.
    kernel : {"rbf", "linear", "poly", "sigmoid"}, default="rbf"
        The linear kernel goes through libsvm too, which is slow beyond a few thousand clips.
    gamma : {"scale", "auto"} or float or None, default="scale"
        SVC's kernel coefficient (not used by the linear kernel). None selects it from
        ``gamma_grid``.
    C_grid : sequence of float, default=(1.0, 10.0, 100.0)
        Candidates for ``C`` when ``C`` is None. On a tie the first wins.
    gamma_grid : sequence, default=("scale", 0.001, 0.01)
        Candidates for ``gamma`` when ``gamma`` is None.
    n_splits : int >= 2, default=3
        Inner splits for the selection and the calibration (fewer when a class is smaller; see
        :func:`~estimators._classical.inner_splits`).
    random_state : int, default=0
        Seed of the inner splits' shuffling (a run setting: an experiment sets it to its seed).
    features : {"stats", "summary", "flatten"}, default="stats"
        How a sample becomes a feature vector (:class:`~estimators._classical.FeatureReshaper`):
        mean and standard deviation over its last axis (time), those and the min and max, or all
        its values.
    calibration : {"temperature", "sigmoid"}, default="temperature"
        How out-of-fold decision values become probabilities: one temperature for all classes
        (keeps the SVC's ranking of the classes), or one-vs-rest Platt scaling (two parameters
        per class; reorders the classes when they have few clips).

    Attributes
    ----------
    C_ : float
        The ``C`` used: ``C``, or the one selected.
    gamma_ : str or float
        The ``gamma`` used: ``gamma``, or the one selected.
    cv_results_ : dict or None
        The inner search's ``GridSearchCV.cv_results_``; None when nothing was selected.
    inner_grouped_ : bool
        Whether the inner splits kept the groups apart (False without ``groups``).
    pipeline_, classes_, n_features_in_ :
        See :class:`~estimators._classical.ClassicalClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 4, 10)).astype(np.float32)
    >>> y = np.repeat(["dog", "rain"], 20)
    >>> X[y == "rain"] += 1.0
    >>> svm = SVMClassifier().fit(X, y, groups=np.arange(40) // 2)
    >>> svm.predict_proba(X[:2]).shape, svm.C_ in svm.C_grid
    ((2, 2), True)
    """

    run_params = ("random_state",)

    def __init__(self, *, C=None, kernel="rbf", gamma="scale", C_grid=(1.0, 10.0, 100.0),
                 gamma_grid=("scale", 0.001, 0.01), n_splits=3, random_state=0, features="stats",
                 calibration="temperature"):
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.C_grid = C_grid
        self.gamma_grid = gamma_grid
        self.n_splits = n_splits
        self.random_state = random_state
        self.features = features
        self.calibration = calibration

    def _fit(self, X, y, groups):
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"{type(self).__name__}: calibration={self.calibration!r} must be one of "
                             f"{', '.join(CALIBRATIONS)}")
        front = Pipeline([("reshape", FeatureReshaper(mode=self.features)), ("scale", StandardScaler())])
        Z = front.fit_transform(X, y)
        splits, self.inner_grouped_ = inner_splits(y, groups, n_splits=self.n_splits,
                                                   random_state=self.random_state, name=type(self).__name__)
        grid = {"svc__C": list(self.C_grid) if self.C is None else [self.C],
                "svc__gamma": list(self.gamma_grid) if self.gamma is None else [self.gamma]}
        # the scaler is refitted inside each inner split: no inner test clip shapes it
        search = Pipeline([("scale", StandardScaler()), ("svc", SVC(kernel=self.kernel))])
        best, self.cv_results_ = select_params(search, grid, front[0].transform(X), y, splits)
        self.C_, self.gamma_ = best["svc__C"], best["svc__gamma"]
        svm = SVC(C=self.C_, kernel=self.kernel, gamma=self.gamma_)
        calibrated = CalibratedClassifierCV(svm, method=self.calibration, cv=splits, ensemble=False).fit(Z, y)
        return Pipeline([*front.steps, ("clf", calibrated)])
