"""Cross-validation splits that follow a data set's own protocol, with a leakage guard.

``X`` of an experiment is an array of clip ids, so the splitter looks up each clip's fold and group
in the clip table itself: ``GridSearchCV(cv=ClipSplitter(dataset.clips))`` needs no ``groups``.
"""

import numpy as np
from sklearn.model_selection import BaseCrossValidator, StratifiedGroupKFold

from featurestore.errors import FeatureStoreError, ParameterError
from featurestore.features._common import check_int


class LeakageError(FeatureStoreError):
    """A group (recording, speaker) appears on both sides of a split."""


def check_no_leakage(groups, train, test, *, where="split"):
    """Raise :class:`LeakageError` if a group has clips in both ``train`` and ``test``.

    Parameters
    ----------
    groups : array-like [shape=(n,)]
    train, test : array-like of int
        Row indices of the two sides.
    """
    groups = np.asarray(groups)
    shared = np.intersect1d(groups[train], groups[test])
    if len(shared):
        raise LeakageError(f"{where}: {len(shared)} group(s) on both sides of the split, e.g. "
                           f"{shared[0]!r}; clips of one recording or speaker must stay together")


class ClipSplitter(BaseCrossValidator):
    """Leave-one-fold-out on the data set's folds, or stratified group k-fold when it has none.

    Parameters
    ----------
    clips : pandas.DataFrame
        The clip table (``Dataset.clips``): ``clip_id``, ``label``, ``fold``, ``group``.
    folds : sequence of int, optional
        Test folds to run (default: all). Each split trains on every other fold, so a fold's score
        is the same as in the full protocol.
    n_splits : int
        Splits of stratified group k-fold, for data sets without folds.
    random_state : int
        Seed of stratified group k-fold's shuffling.

    Notes
    -----
    ``split`` checks every split with :func:`check_no_leakage`: predefined folds that put one
    recording in two folds are an error, not a silently inflated score. :meth:`inner` gives the
    splitter of a nested search's inner loop on the training clips of one split.
    """

    def __init__(self, clips, *, folds=None, n_splits=5, random_state=0):
        self.clips = clips
        self.folds = folds
        self.n_splits = n_splits
        self.random_state = random_state

    def _rows(self, X):
        ids = np.asarray(X).reshape(-1).astype(str)
        table = self.clips.set_index("clip_id")
        unknown = np.setdiff1d(ids, table.index.to_numpy(dtype=str))
        if len(unknown):
            hint = ("; augmented copies never go through a splitter: ClipPipeline.fit adds the copies of the "
                    "training clips itself" if "#aug" in unknown[0] else "")
            raise ValueError(f"{len(unknown)} clip ids are not in the clip table, e.g. {unknown[0]!r}{hint}")
        return table.loc[ids]

    def has_folds(self):
        """Whether every clip of the table has a predefined fold."""
        return bool(self.clips["fold"].notna().all())

    def test_folds(self, X=None):
        """Test fold numbers of the splits of ``X`` (all clips when None); None entries for k-fold."""
        if not self.has_folds():
            return [None] * self.n_splits
        column = self.clips["fold"] if X is None else self._rows(X)["fold"]
        present = sorted(int(f) for f in column.unique())
        if self.folds is None:
            return present
        wanted = [int(f) for f in self.folds]
        absent = sorted(set(wanted) - set(present))
        if absent:
            raise ValueError(f"fold(s) {absent} have no clips; the folds present are {present}")
        return wanted

    def inner(self, X, *, max_splits=None):
        """The splitter of a nested search's inner loop, on the training clips ``X`` of one outer split.

        With predefined folds: leave-one-fold-out on the folds present in ``X`` (the outer test fold
        is not among them); ``max_splits`` keeps the first ``max_splits`` of them as inner test folds,
        each still trained on every other fold of ``X``. Without folds: stratified group k-fold of ``X``
        with ``max_splits`` splits (default: this splitter's ``n_splits``) and this splitter's seed.

        Parameters
        ----------
        X : array-like of str [shape=(n,)]
            Clip ids of the outer training set.
        max_splits : int, optional
            Cap on the inner splits (default: all remaining folds, or ``n_splits``).

        Returns
        -------
        ClipSplitter
            Its ``split(X)`` gives row indices into ``X``, never a clip outside ``X``.
        """
        max_splits = check_int("inner_splits", max_splits, allow_none=True)
        if self.has_folds():
            present = sorted(int(f) for f in self._rows(X)["fold"].unique())
            if len(present) < 2:
                raise ValueError(f"the outer training set holds only fold(s) {present}: a nested search needs "
                                 "at least 3 folds in all (a flat search needs 2)")
            folds = present if max_splits is None else present[:max_splits]
            return ClipSplitter(self.clips, folds=folds, n_splits=self.n_splits, random_state=self.random_state)
        n_splits = self.n_splits if max_splits is None else max_splits
        if n_splits < 2:
            raise ParameterError(f"inner_splits={n_splits}: a data set without folds needs at least 2 inner "
                             "splits (stratified group k-fold)")
        return ClipSplitter(self.clips, n_splits=n_splits, random_state=self.random_state)

    def get_n_splits(self, X=None, y=None, groups=None):
        return len(self.test_folds(X))

    def split(self, X, y=None, groups=None):
        rows = self._rows(X)
        group_of = rows["group"].to_numpy()
        if self.has_folds():
            fold_of = rows["fold"].to_numpy(dtype=int)
            for fold in self.test_folds(X):
                test = np.flatnonzero(fold_of == fold)
                train = np.flatnonzero(fold_of != fold)
                if len(train) == 0:
                    raise ValueError(f"fold {fold} is the only fold: nothing is left to train on")
                check_no_leakage(group_of, train, test, where=f"fold {fold}")
                yield train, test
        else:
            splitter = StratifiedGroupKFold(self.n_splits, shuffle=True, random_state=self.random_state)
            for train, test in splitter.split(rows.index, rows["label"].to_numpy(), group_of):
                check_no_leakage(group_of, train, test)
                yield train, test
