"""The version of Podium, read by the build and by ``podium --version``."""

__version__ = "0.1.0"
