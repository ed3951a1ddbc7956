"""Requests to business URLs: resolve once, judge every address, connect to the address that was judged.

`resolve` looks the host up once and refuses the URL if any address it resolves to is not public:
private, loopback, link-local, shared (CGNAT), multicast, reserved or unspecified addresses, IPv4-mapped
IPv6 of those, and the IPv6 ranges that tunnel to an IPv4 address (NAT64 64:ff9b::/96 and
64:ff9b:1::/48, 6to4 2002::/16, Teredo 2001::/32, IPv4-compatible ::/96), whose embedded IPv4 the
refusal names. `pinned_session` then connects to that checked address only: the URL keeps its host
for the Host header, TLS SNI and certificate check, so a DNS answer that changes between the check and
the request (DNS rebinding) cannot move the request into our network.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import current_app
from requests.adapters import HTTPAdapter

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
TUNNELS: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (ipaddress.IPv6Network("64:ff9b::/96"), "NAT64"),
    (ipaddress.IPv6Network("64:ff9b:1::/48"), "local NAT64"),
    (ipaddress.IPv6Network("2002::/16"), "6to4"),
    (ipaddress.IPv6Network("2001::/32"), "Teredo"),
    (ipaddress.IPv6Network("::/96"), "IPv4-compatible"),
)


class Refused(ValueError):
    """A URL we will not send to, with the reason."""


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    address: str  # the checked address the request connects to


def embedded_ipv4(ip: ipaddress.IPv6Address, kind: str) -> ipaddress.IPv4Address | None:
    if kind == "6to4":
        return ip.sixtofour
    if kind == "Teredo":
        return ip.teredo[1] if ip.teredo else None  # the client's address
    if kind == "local NAT64":
        return None  # RFC 8215 lets the operator place the IPv4 bits anywhere
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def refusal(ip: IPAddress) -> str | None:
    """Why an address may not be reached from a business URL, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            inner = refusal(ip.ipv4_mapped)
            return f"{inner} (IPv4-mapped)" if inner else None
        for network, kind in TUNNELS:
            if ip in network and not (ip.is_loopback or ip.is_unspecified):  # ::1 and :: sit inside ::/96
                inner = embedded_ipv4(ip, kind)
                article = "an" if kind[0] in "AEIOU" else "a"
                return f"{article} {kind} address" + (f" (embedding {inner})" if inner is not None else "")
        if ip.is_site_local:
            return "a site-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified or ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "a private, loopback, link-local or shared address"
    return None


def check_scheme(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("the URL must be http:// or https:// with a host")


def resolve(url: str, *, allow_private: bool) -> Target:
    """Look the URL's host up once; refuse it if any address is not public (unless allowed)."""
    check_scheme(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise Refused(f"{host} does not resolve") from exc
    addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    if not addresses:
        raise Refused(f"{host} does not resolve")
    if not allow_private:
        for address in addresses:
            reason = refusal(ipaddress.ip_address(address))
            if reason:
                raise Refused(f"{host} resolves to {reason} ({address})")
    return Target(url=url, host=host, address=addresses[0])


class PinnedAdapter(HTTPAdapter):
    """Connect to one address whatever the URL's host; the host stays in Host, SNI and the certificate check."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        hostname = host_params["host"]
        host_params["host"] = self.address
        if host_params["scheme"] == "https":  # the HTTP pool takes neither argument
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        return host_params, pool_kwargs

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        request.headers.setdefault("Host", urlsplit(request.url).netloc.rpartition("@")[2])
        return super().send(request, *args, **kwargs)


def post_to_account_url(url: str, body: bytes, headers: dict[str, str], timeout: float) -> requests.Response:
    """POST to a business's URL (bot forward, status callback): resolved and judged once, then sent to
    the checked address, no redirects followed. Raises Refused, or requests' errors for the caller to map."""
    target = resolve(url, allow_private=current_app.config["FORWARD_ALLOW_PRIVATE"])
    with pinned_session(target) as http:
        return http.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)


def pinned_session(target: Target) -> requests.Session:
    """A session that sends to the target's checked address only (no proxy from the environment)."""
    session = requests.Session()
    session.trust_env = False
    adapter = PinnedAdapter(target.address)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
