"""What a run records about how it was made, beyond its scores: the fields of ``run.json`` that let a
reader repeat it and trust it.

A :class:`RunRecord` is started when a command starts (its command line and configuration, the clocks)
and asked for its fields when the results folder is written (:meth:`RunRecord.fields`): the command
line, the resolved configuration, the seed, the toolkit's git commit when it is a checkout, Python's and
the libraries' versions, the host, the data set's identity, the store keys of every feature set used,
the skipped clips, and wall and CPU time.
"""

import os
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from featurestore.store import library_versions as store_library_versions

#: Distributions whose versions are recorded (those installed; the others are recorded as null).
LIBRARIES = ("numpy", "scipy", "pandas", "scikit-learn", "imbalanced-learn", "librosa", "soundfile", "soxr",
             "h5py", "torch", "skorch", "xgboost", "xgboost-cpu", "joblib", "mlflow", "tensorboard")

#: The toolkit's folder: its git commit is recorded when it is a checkout.
TOOLKIT = Path(__file__).resolve().parents[1]


@dataclass
class RunRecord:
    """The start of a run: its command line, its configuration and its CPU clock.

    Parameters
    ----------
    argv : list of str, optional
        The command line (without the program), as typed; None when the run comes from Python.
    config : dict, optional
        The configuration the command line and ``--config`` resolved to (:mod:`pipelines.config`).
    """

    argv: list = None
    config: dict = None
    cpu_start: os.times_result = field(default_factory=os.times)

    def fields(self, *, dataset, feature_sets, skipped, seed, config=None):
        """The ``run.json`` fields of the run, now.

        Parameters
        ----------
        dataset : featurestore.Dataset
        feature_sets : list of featurestore.FeatureSet
            Every set the run read: main sets and augmented copies.
        skipped : pandas.DataFrame
            :func:`pipelines.results.skipped_clips`.
        seed : int
        config : dict, optional
            The fully resolved configuration (default: the one the record started with).

        Returns
        -------
        dict
            ``command_line``, ``config``, ``seed``, ``git``, ``python``, ``libraries``, ``host``,
            ``dataset_identity``, ``feature_sets``, ``skipped`` and ``cpu_time`` (``run.json``'s
            ``wall_time`` is the run's own, measured by the experiment).
        """
        return {
            "command_line": None if self.argv is None else shlex.join(["cli.py", *map(str, self.argv)]),
            "config": config if config is not None else self.config,
            "seed": seed,
            "git": git_commit(),
            "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                       "executable": sys.executable},
            "libraries": library_versions(),
            "host": host(),
            "dataset_identity": dataset_identity(dataset),
            "feature_sets": [feature_set_record(fs) for fs in feature_sets],
            "skipped": skipped.astype(object).where(skipped.notna(), None).to_dict("records"),
            "cpu_time": cpu_time(self.cpu_start),
        }


def git_commit(folder=TOOLKIT):
    """``{"commit", "dirty"}`` of the git checkout at ``folder``, or None when it is not one (an installed
    copy) or git is absent. ``dirty``: tracked files differ from the commit."""
    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def library_versions(names=LIBRARIES):
    """``{distribution: version}`` of the installed distributions among ``names`` (None when absent)."""
    return store_library_versions(names)


def host():
    """The machine: name, operating system, processor and cores."""
    return {"name": platform.node(), "platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count()}


def dataset_identity(dataset):
    """The data set a run read: its layout, root, options, clip count and identity hash (the store's)."""
    return {"name": dataset.name, "root": str(dataset.root), "options": dataset.options,
            "n_clips": int(len(dataset.clips)), "fingerprint": dataset.fingerprint, "identity": dataset.identity}


def feature_set_record(fs):
    """A feature set's store key, kind, parameters and path (augmented copies: their key and their source's)."""
    record = {"kind": fs.kind, "key": fs.attrs.get("key"), "path": str(fs.path), "params": fs.params}
    if fs.augmentation is not None:
        record["source_key"] = fs.attrs.get("source_key")
        record["augmentation"] = fs.augmentation
    return record


def cpu_time(start):
    """CPU seconds since ``start`` (an ``os.times()``): this process's user and system time, and that
    of the worker processes that have ended (joblib's are shut down after each cross-validation)."""
    now = os.times()
    own = (now.user - start.user) + (now.system - start.system)
    children = (now.children_user - start.children_user) + (now.children_system - start.children_system)
    return {"total": own + children, "process": own, "workers": children}
