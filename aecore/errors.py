"""The one error type of aecore: its message is written for the analyst, not the developer."""


class AecoreError(ValueError):
    """Bad input or misuse, with one clear, specific message meant to be shown as is."""


class NotFittedError(AecoreError, AttributeError):
    """A method that needs a fitted detector was called before ``fit``."""
