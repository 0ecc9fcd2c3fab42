"""Algorithms: what runs on a pod and how the modeller combines it."""

from __future__ import annotations

__all__: list[str] = []
