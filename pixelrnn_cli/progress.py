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
