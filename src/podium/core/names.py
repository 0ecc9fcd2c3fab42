"""The one rule for user, owner, pod and project names, shared by the hub and the parties.

A name is 1 to 63 characters of ``a-z 0-9 _ -``, starting with a letter or digit: safe in
URLs, file names, mailbox names and SQL identifiers alike, and free of ``.`` and ``/`` so
that ``<owner>.<pod>`` (a party) and ``<owner>/<pod>`` (a pod id) split one way only.
"""

from __future__ import annotations

import re
from typing import TypeGuard

__all__ = ["NAME_CHARS", "NAME_PATTERN", "is_valid_name"]

#: The rule as a regular expression fragment, to build larger patterns from.
NAME_CHARS = r"[a-z0-9][a-z0-9_-]{0,62}"
#: The rule anchored at both ends (for FastAPI ``pattern=``, whose regex engine reads ``$``
#: as the very end). With Python's :mod:`re` use ``fullmatch``: there ``$`` also matches
#: before a final newline.
NAME_PATTERN = rf"^{NAME_CHARS}$"
_NAME_RE = re.compile(NAME_CHARS)


def is_valid_name(name: object) -> TypeGuard[str]:
    """Whether ``name`` is a string that follows the name rule."""
    return type(name) is str and _NAME_RE.fullmatch(name) is not None
