"""What a run tells its user, as events: the library never prints, the command line does.

:class:`Reporter` receives the events of :class:`~pipelines.experiment.Experiment`,
:func:`~pipelines.results.write_run` and :func:`~pipelines.compare.report`; each method does nothing,
so a notebook user sees nothing unless they pass a reporter of their own (``cli.PrintReporter`` prints
the lines the command line shows). Progress bars are separate: the ``progress`` flag turns them on.
"""


class Reporter:
    """Receives a run's events; every method does nothing. Subclass it and override what to show.

    Examples
    --------
    >>> class Refits(Reporter):
    ...     def refit_done(self, label, seconds):
    ...         print(f"{label} refitted")
    >>> Refits().refit_done("svm", 1.5)
    svm refitted
    >>> Reporter().refit_done("svm", 1.5)  # the default says nothing
    """

    def audio(self, dataset, audio, overrides):
        """The audio settings of a run, once, before extraction.

        Parameters
        ----------
        dataset : str
            The data set's label (:func:`~pipelines.results.dataset_label`).
        audio : dict
            The resolved audio settings (``sr``, ``duration``, ...).
        overrides : dict or None
            Those set with ``--set audio.*``.
        """

    def table(self, text):
        """A formatted table of results (a search's candidates, a nested selection, a comparison)."""

    def section(self, title):
        """A new part of a longer job begins (a demo's next model, its comparison)."""

    def refit_started(self, label, n_clips):
        """The final fit of ``label`` on all ``n_clips`` clips begins: it can take minutes."""

    def refit_epoch(self, label, epoch, max_epochs, seconds, train_loss, valid_acc):
        """An epoch of a torch net's final fit ended: ``seconds`` since the net's fit began;
        ``valid_acc`` None without a validation split (an ensemble's nets tell theirs in turn)."""

    def refit_done(self, label, seconds):
        """The final fit of ``label`` ended after ``seconds``."""

    def saving(self, path):
        """The model is being written to ``path`` (a large ensemble takes a while)."""

    def saved(self, path, size_bytes, seconds):
        """The model was written to ``path``: ``size_bytes`` in ``seconds``."""

    def done(self, folder, summary):
        """A run ended; ``summary`` is its headline score (``"accuracy 0.912 +/- 0.020"``), ``folder`` its results."""

    def note(self, text):
        """Something was left out, with the reason (a path given to ``report`` that holds no run)."""

    def compared(self, folder, written, n_runs=None):
        """A comparison was written to ``folder`` as the files ``written``; ``n_runs`` runs (None: a demo's)."""
