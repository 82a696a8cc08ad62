"""A rich progress bar for the workflows' `progress` hook: `with RichProgress(text, total) as bar:
bar.update(n)`. Rich comes with typer."""

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class RichProgress:
    def __init__(self, description, total=None):
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
        )
        self._task = self._progress.add_task(description, total=total)

    def __enter__(self):
        self._progress.start()
        return self

    def update(self, n):
        self._progress.advance(self._task, n)

    def __exit__(self, *exc):
        self._progress.stop()
        return False


class SweepProgress:
    """The `progress(done, total, text)` hook of training.sweep as one rich bar over the runs, its
    text saying which run (and epoch) is under way."""

    def __init__(self, description="runs"):
        self._description = description
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        )
        self._task = None

    def __call__(self, done, total, text):
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=total)
        self._progress.update(self._task, completed=done, description=f"{self._description}: {text}")

    def close(self):
        if self._task is not None:
            self._progress.stop()
