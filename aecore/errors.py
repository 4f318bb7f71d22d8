"""The one error type of aecore: its message is written for the analyst, not the developer.

``NotFittedError`` subclasses scikit-learn's, which costs importing scikit-learn (a second or
two); it is made on first use (module ``__getattr__``), so that ``import aecore`` and the
command line's help and argument errors stay quick.
"""

from __future__ import annotations


class AecoreError(ValueError):
    """Bad input or misuse, with one clear, specific message meant to be shown as is."""


_NOT_FITTED: type | None = None


def _not_fitted_error() -> type:
    global _NOT_FITTED
    if _NOT_FITTED is None:
        from sklearn.exceptions import NotFittedError as SklearnNotFittedError

        class NotFittedError(AecoreError, SklearnNotFittedError):
            """A method that needs a fitted detector was called before ``fit``; also
            scikit-learn's ``NotFittedError`` (a ``ValueError`` and an ``AttributeError``), so
            code written for scikit-learn estimators catches it."""

        NotFittedError.__module__ = __name__
        NotFittedError.__qualname__ = "NotFittedError"
        _NOT_FITTED = NotFittedError
    return _NOT_FITTED


def __getattr__(name: str):
    if name == "NotFittedError":
        return _not_fitted_error()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
