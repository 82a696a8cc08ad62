"""The one error the exporter raises for bad input: what is wrong and how to fix it."""


class ExportError(ValueError):
    """An export that cannot be done (bad model, bad option, missing data); raised before any
    file is written."""
