"""The hub's REST API under ``/api/v1``."""
