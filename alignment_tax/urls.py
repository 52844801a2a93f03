"""Server URLs: which are local, and how to write one down without its credentials.

>>> is_local_url("http://localhost:11434/v1"), is_local_url("https://api.openai.com/v1")
(True, False)
>>> public_url("https://user:secret@host.example:8443/v1")
'https://host.example:8443/v1'
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit


def is_local_url(url: str) -> bool:
    """Loopback or private-network hosts: local servers, which usually need no key."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


def public_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, fit to be written into results."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
