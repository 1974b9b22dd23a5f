"""Exceptions of the analysis package. Each message says what to fix."""

from __future__ import annotations

__all__ = ["AnalysisError", "RunTraceError"]


class AnalysisError(Exception):
    """Base class of every analysis error."""


class RunTraceError(AnalysisError):
    """A run log or bag cannot be read, or holds nothing to analyse."""
