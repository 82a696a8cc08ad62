"""The error the compiler raises for a model or table it cannot map onto an array."""


class CompileError(ValueError):
    """A model or table that the compiler cannot map onto the array, with the reason and the fix."""
