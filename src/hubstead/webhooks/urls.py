"""The one rule for where a webhook may point.

``check_url`` is called when a hook is created or updated (a refused URL is a 422 that says why) and again
before every delivery, because what a name resolves to can change. It returns the addresses it checked, and
the sender connects to one of those (``target``), never to a fresh lookup of the name, so a name that
resolved to a public address at check time cannot be switched to an internal one in between. Redirects are
never followed.

By default only globally routable unicast addresses are allowed: loopback, link-local (cloud metadata
services live at 169.254.169.254), private (RFC 1918, RFC 4193), shared (RFC 6598), multicast, unspecified
and reserved addresses are refused, including IPv4 addresses written inside IPv6 (``::ffff:10.0.0.1``).
``Settings.webhooks_allow_private`` (``--webhooks-allow-private``) lifts that for hubs whose receivers live on
the same network.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from hubstead.errors import HubError

MAX_URL_LENGTH = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookUrlError(HubError):
    """A hook URL that is malformed or points somewhere this hub may not send to."""

    status_code = 422


@dataclass(frozen=True)
class Target:
    """Where a delivery connects: the checked address, and the URL's own host, port and path."""

    scheme: str
    host: str  # the name in the URL (the Host header and, for https, the name the certificate must match)
    port: int
    address: str  # the checked IP address to connect to
    path: str  # path and query

    @property
    def connect_url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def refusal(address: IPAddress) -> str | None:
    """Why a hook may not reach ``address`` by default (None: it may)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return refusal(embedded)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return None


def parse_url(url: object) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of a well-formed ``http(s)://host[:port]/...`` URL, else WebhookUrlError."""
    if not isinstance(url, str) or not url.strip():
        raise WebhookUrlError("The webhook URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlError(f"The webhook URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise WebhookUrlError("The webhook URL may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlError(f"Invalid webhook URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise WebhookUrlError("The webhook URL must start with http:// or https://")
    host = parts.hostname
    if not host:
        raise WebhookUrlError("The webhook URL has no host")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlError("The webhook URL may not carry a user name or password; use the secret instead")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port or (443 if scheme == "https" else 80), path


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` names (an IP literal names itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookUrlError(f"The webhook host {host!r} does not resolve") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]  # an IPv6 scope id is not part of the address
        address = ipaddress.ip_address(text)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise WebhookUrlError(f"The webhook host {host!r} does not resolve")
    return addresses


def check_url(url: object, *, allow_private: bool) -> Target:
    """Check ``url`` and return where to connect. Every address the name resolves to must be allowed (one
    refused address refuses the URL: the client's resolver could pick any of them)."""
    scheme, host, port, path = parse_url(url)
    addresses = resolve(host, port)
    if not allow_private:
        for address in addresses:
            why = refusal(address)
            if why is not None:
                named = host if host == str(address) else f"{host} ({address})"
                raise WebhookUrlError(
                    f"The webhook URL points at {why}: {named}. This hub only sends webhooks to public "
                    "addresses (its administrator can allow private ones with --webhooks-allow-private)"
                )
    return Target(scheme=scheme, host=host, port=port, address=str(addresses[0]), path=path)
