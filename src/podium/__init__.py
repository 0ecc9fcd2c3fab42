"""Podium: self-hostable federated analytics and federated learning."""

from podium._version import __version__

__all__ = ["__version__"]
