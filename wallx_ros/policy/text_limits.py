"""Limits of the language side, torch-free (the node's parameter table reads them)."""

from __future__ import annotations

__all__ = ["MAX_NEW_TOKENS_LIMIT"]

MAX_NEW_TOKENS_LIMIT = 1024  # X-Square's VQA default; more is a runaway answer, not a longer one
