"""Run extraction and experiments on a Dask cluster, through joblib's ``"dask"`` backend.

Nothing here schedules work itself: :func:`session` connects a ``dask.distributed`` client and makes
it joblib's backend, so the ``Parallel`` loops of extraction and evaluation run their tasks on the
cluster's workers. Workers open the store's HDF5 files themselves, by path, so the store (and the
audio, for extraction) must be on a filesystem every worker sees under the same path; only clip ids,
one batch's features and fitted results travel through the scheduler.

Dask is an optional dependency: ``pip install ".[dask]"``.
"""

import os
from collections import defaultdict
from contextlib import contextmanager

INSTALL_HINT = 'Dask is not installed; install the extra with: pip install ".[dask]"'


class ClusterError(RuntimeError):
    """A Dask cluster is not installed, cannot be reached, or a worker cannot read the store.

    Raised by this module only; it lived in ``featurestore.errors`` before, although the feature
    store knows nothing of clusters.
    """


def connect(scheduler, n_workers=1, *, timeout=10, memory_limit=None):
    """A ``dask.distributed.Client`` of the cluster at ``scheduler``.

    Parameters
    ----------
    scheduler : str
        ``"tcp://HOST:PORT"`` of a running scheduler, or ``"local"`` to start a cluster on this
        machine (on the loopback interface) with ``n_workers`` single-threaded worker processes.
    n_workers : int
        Workers of a ``"local"`` cluster.
    timeout : float
        Seconds to wait for a remote scheduler.
    memory_limit : int or str, optional
        Memory limit of each worker of a ``"local"`` cluster (bytes, or ``"2GiB"``...; Dask's default,
        the machine's memory divided among the workers, when None). A worker's memory budget for
        feature sets is a quarter of it (:func:`featurestore.streaming.memory_budget`): larger sets
        stream.

    Returns
    -------
    distributed.Client
        Closing it also closes a ``"local"`` cluster.
    """
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
    if scheduler == "local":
        if int(n_workers) < 1:
            raise ClusterError(f"n_workers={n_workers} must be a positive integer")
        # Without an address the client starts a LocalCluster and closes it with itself.
        limit = {} if memory_limit is None else {"memory_limit": memory_limit}
        return Client(n_workers=int(n_workers), threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0", **limit)
    try:
        return Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None


def _unreadable(paths):
    """Runs on a worker: the first of ``paths`` this process cannot read, or None."""
    for path in paths:
        if not os.path.exists(path):
            return f"{path} (does not exist)"
        if not os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0)):
            return f"{path} (not readable)"
    return None


def check_reachable(client, paths):
    """Fail at once unless every worker can read each of ``paths`` (the store root, a feature set).

    Raises
    ------
    ClusterError
        Naming the worker and the path it tried.
    """
    paths = [str(p) for p in paths]
    problems = client.run(_unreadable, paths)
    for worker, problem in sorted(problems.items()):
        if problem is not None:
            raise ClusterError(f"Dask worker {worker} cannot open {problem}; the store and the audio must be "
                               f"on a filesystem that every worker sees under the same path")


def threads_per_fit(client):
    """Torch threads per task so that the tasks running at once on a host share its cores.

    A host's cores divided by the worker threads on it (each runs one task at a time); the
    smallest value over hosts, at least 1.
    """
    cores = client.run(os.cpu_count)
    per_host = defaultdict(lambda: [0, 0])  # host -> [cores, threads]
    for address, info in client.scheduler_info(n_workers=-1)["workers"].items():
        host = info["host"]
        per_host[host][0] = cores.get(address) or 1
        per_host[host][1] += info["nthreads"]
    return max(1, min((c // max(1, t) for c, t in per_host.values()), default=1))


@contextmanager
def session(scheduler, n_workers=1, *, paths=(), memory_limit=None):
    """Connect (see :func:`connect`), check that the workers can read ``paths``, and make Dask joblib's backend.

    Yields
    ------
    distributed.Client
        ``sum(client.nthreads().values())`` is the number of tasks the cluster runs at once.
    """
    from joblib import parallel_config

    client = connect(scheduler, n_workers, memory_limit=memory_limit)
    try:
        check_reachable(client, paths)
        with parallel_config(backend="dask"):
            yield client
    finally:
        client.close()
