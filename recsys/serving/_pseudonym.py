"""The one-way key that stands for an erased user where fairrec must still recognise them.

After ``fairrec erase``, nothing fairrec manages names the user's id; training must
still leave them out. The consent store keeps ``erasure_key(user_id)`` instead (a
SHA-256 digest with a fixed prefix), and training drops every user whose id has a
key on that list. This is pseudonymisation, not anonymisation: whoever holds a
candidate id can test it against the list, which is what the list is for.
"""

from __future__ import annotations

import hashlib

__all__ = ["ERASURE_KEY_PREFIX", "erasure_key"]

ERASURE_KEY_PREFIX = "sha256:"


def erasure_key(user_id: object) -> str:
    """The key of an erased user id (compared as text, like consent).

    >>> erasure_key(7) == erasure_key("7")
    True
    >>> erasure_key("7").startswith("sha256:")
    True
    """
    digest = hashlib.sha256(f"fairrec-erased-user:{user_id}".encode()).hexdigest()
    return f"{ERASURE_KEY_PREFIX}{digest}"
