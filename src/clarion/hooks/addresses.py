"""Where a hook may point: `https://` to a public address, or `http://` and internal
addresses only for the hosts the operator allows (`CLARION_HOOKS_ALLOW_HTTP_HOSTS`).

The rule is checked when a hook is saved (the URL, and the addresses its host name resolves
to then) and again on every delivery, where the name is resolved through `GuardedResolver`,
the resolver of the delivering HTTP session: a name that later resolves to an internal address
(DNS rebinding) is refused at the connection itself, not by a check made beforehand.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from clarion.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
RESOLVE_TIMEOUT = 3.0  # seconds a name gets to resolve when a hook is saved


class AddressRefused(Exception):
    """The URL or the address it leads to is not one a hook may reach (said in the message)."""


def allowed_hosts(settings: Settings) -> set[str]:
    return {h.strip("[]").lower() for h in settings.hooks_allow_http_hosts}


def own_hosts(settings: Settings) -> set[str]:
    """This server's own names: a hook pointing back at the API it is served by."""
    host = urlsplit(settings.public_url).hostname
    return {host.lower()} if host else set()


def is_internal(address: IPAddress) -> bool:
    """Loopback, link-local, private, unspecified, multicast or reserved (IPv4 mapped into
    IPv6 judged as the IPv4 address it carries)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or not address.is_global
    )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, settings: Settings) -> str:
    """The URL's host name (lower case) if the URL itself may be used; raises AddressRefused.
    A host name's addresses are checked by `check_resolved` / `GuardedResolver`."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise AddressRefused(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise AddressRefused("must be an absolute https:// URL")
    if parts.username or parts.password:
        raise AddressRefused("must not carry a user name or password")
    allowed = host in allowed_hosts(settings)
    if parts.scheme == "http" and not allowed:
        raise AddressRefused(
            "must be https:// (http:// only to hosts in CLARION_HOOKS_ALLOW_HTTP_HOSTS)"
        )
    if allowed:
        return host
    if host in own_hosts(settings) or host == "localhost" or host.endswith(".localhost"):
        raise AddressRefused("must not point at this server or the local machine")
    address = _literal(host)
    if address is not None and is_internal(address):
        raise AddressRefused(f"must not point at an internal address ({address})")
    return host


def refused_among(host: str, addresses: list[str], settings: Settings) -> str | None:
    """The first of `addresses` (what `host` resolved to) a hook may not reach, or None."""
    if host in allowed_hosts(settings):
        return None
    for text in addresses:
        address = _literal(text.split("%", 1)[0])
        if address is not None and is_internal(address):
            return text
    return None


async def check_resolved(host: str, settings: Settings) -> None:
    """Refuse a host name that resolves to an internal address now. A name that does not
    resolve (yet) is let through: deliveries check again at every connection."""
    if _literal(host) is not None or host in allowed_hosts(settings):
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT
        )
    except (OSError, TimeoutError):
        return
    bad = refused_among(host, [str(info[4][0]) for info in infos], settings)
    if bad is not None:
        raise AddressRefused(f"{host} resolves to an internal address ({bad})")


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing names that resolve to an internal address (unless the
    host is allowed): the check and the connection use the same answer."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        bad = refused_among(host.lower(), [r["host"] for r in results], self._settings)
        if bad is not None:
            raise OSError(f"{host} resolves to an internal address ({bad}): refused")
        return results

    async def close(self) -> None:
        await self._inner.close()
