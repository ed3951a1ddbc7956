"""SSRF guard for business URLs: a table of addresses, and proof that the request goes to the address
that was checked (one DNS lookup; Host, SNI and the certificate keep the URL's host), over real
loopback HTTP and HTTPS."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess

import pytest
import requests
from pytest_httpserver import HTTPServer

from bot import netguard
from bot.apikeys import create_key
from bot.carriers import InboundSms
from bot.pipeline.inbound import receive
from models import InboundMessage

PHONE, NUMBER = "+46731234567", "+46700000001"


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
        ("::ffff:93.184.216.34", None),  # IPv4-mapped public address: the same host
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "private"),  # cloud metadata
        ("100.64.0.1", "shared"),  # carrier-grade NAT
        ("0.0.0.0", "reserved"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::1", "loopback"),
        ("::", "reserved"),
        ("fe80::1", "private"),
        ("fc00::1", "private"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("ff0e::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback address (IPv4-mapped)"),
        ("::ffff:10.0.0.1", "private, loopback, link-local or shared address (IPv4-mapped)"),
        ("64:ff9b::7f00:1", "NAT64 address (embedding 127.0.0.1)"),
        ("64:ff9b::a9fe:a9fe", "NAT64 address (embedding 169.254.169.254)"),
        ("64:ff9b::808:808", "NAT64 address (embedding 8.8.8.8)"),
        ("64:ff9b:1::1", "local NAT64"),
        ("2002:7f00:1::1", "6to4 address (embedding 127.0.0.1)"),
        ("2002:c0a8:101::1", "6to4 address (embedding 192.168.1.1)"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo address (embedding 192.0.2.45)"),
        ("::127.0.0.1", "IPv4-compatible address (embedding 127.0.0.1)"),
        ("::8.8.8.8", "IPv4-compatible"),
        ("2001:db8::1", "private"),  # documentation
        ("100::1", "reserved"),  # discard-only
    ],
)
def test_address_table(address, refused):
    reason = netguard.refusal(ipaddress.ip_address(address))
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason, reason


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::7f00:1]/bot",
        "http://[2002:7f00:1::1]/bot",
        "http://[::ffff:127.0.0.1]/bot",
        "http://[::127.0.0.1]/bot",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/bot",
        "http://[ff0e::1]/bot",
        "http://224.0.0.1/bot",
    ],
)
def test_the_api_refuses_tunnelled_and_multicast_addresses(app, client, make_account, make_carrier, make_number, url):
    number = make_number(make_account(name="Shop"), make_carrier("generic"), NUMBER)
    headers = {"Authorization": f"Bearer {create_key(number.account, 'admin')[1]}"}
    answer = client.patch(f"/api/v1/numbers/{NUMBER}", json={"forward_url": url}, headers=headers)
    assert (answer.status_code, answer.json["error"]["field"]) == (422, "forward_url")


class Resolver:
    """A resolver hook: answers chosen names from a script, one answer per lookup, and records every lookup."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str, answers: list[str], refuse: set[str]) -> None:
        self.real = socket.getaddrinfo
        self.name, self.answers, self.refuse = name, list(answers), refuse
        self.lookups: list[str] = []
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.lookups.append(host)
        if host in self.refuse:
            raise socket.gaierror(socket.EAI_NONAME, "refused by the test resolver")
        if host == self.name:
            address = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            return self.real(address, port, *args, **kwargs)
        return self.real(host, port, *args, **kwargs)


@pytest.fixture
def shop_with_bot(app, httpserver: HTTPServer, make_account, make_carrier, make_number):
    app.config.update(FORWARD_TIMEOUT_SECONDS=1, FORWARD_RETRY_INTERVALS=[])
    carrier = make_carrier("generic", url=httpserver.url_for("/sms"))
    url = f"http://bot.example:{httpserver.port}/bot"
    return make_number(make_account(name="Shop"), carrier, NUMBER, forward_url=url)


def test_a_rebinding_dns_answer_cannot_move_the_request(app, shop_with_bot, httpserver, run_worker, monkeypatch):
    """Checked as a public address, then the name answers loopback: the request still goes to the checked
    address (which the test resolver refuses to connect to), never to the loopback bot."""
    app.config["FORWARD_ALLOW_PRIVATE"] = False
    httpserver.expect_request("/bot").respond_with_json({"reply": "rebound!"})
    resolver = Resolver(monkeypatch, "bot.example", ["93.184.216.34", "127.0.0.1"], refuse={"93.184.216.34"})
    inbound = receive(shop_with_bot.carrier, InboundSms("r1", PHONE, NUMBER, "hello"))
    run_worker()
    assert resolver.lookups.count("bot.example") == 1
    assert "93.184.216.34" in resolver.lookups  # the connection was made to the checked address
    assert httpserver.log == []
    assert InboundMessage.get_by_id(inbound.id).outcome.startswith("forward failed")


def test_the_request_connects_to_the_checked_address_with_the_host_kept(
    app, shop_with_bot, httpserver, run_worker, monkeypatch
):
    app.config["FORWARD_ALLOW_PRIVATE"] = True
    httpserver.expect_request("/bot").respond_with_json({"reply": ""})
    resolver = Resolver(monkeypatch, "bot.example", ["127.0.0.1", "127.0.0.2"], refuse=set())
    inbound = receive(shop_with_bot.carrier, InboundSms("r2", PHONE, NUMBER, "hello"))
    run_worker()
    assert resolver.lookups.count("bot.example") == 1
    assert InboundMessage.get_by_id(inbound.id).outcome == "forwarded"
    request, _ = httpserver.log[0]
    assert request.headers["Host"] == f"bot.example:{httpserver.port}"


@pytest.fixture
def tls_files(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=bot.example"]
    subprocess.run(
        [*request, "-addext", "subjectAltName=DNS:bot.example", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def test_https_keeps_sni_and_checks_the_certificate_for_the_host(tls_files):
    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)
    server = HTTPServer(host="127.0.0.1", ssl_context=context)
    server.start()
    try:
        server.expect_request("/bot").respond_with_data("ok")
        url = f"https://bot.example:{server.port}/bot"
        with netguard.pinned_session(netguard.Target(url, "bot.example", "127.0.0.1")) as http:
            answer = http.get(url, verify=cert, timeout=5)
        assert answer.text == "ok"
        assert names == ["bot.example"]
        assert server.log[0][0].headers["Host"] == f"bot.example:{server.port}"
        wrong = f"https://other.example:{server.port}/bot"
        with (
            netguard.pinned_session(netguard.Target(wrong, "other.example", "127.0.0.1")) as http,
            pytest.raises(requests.exceptions.SSLError, match=r"other\.example|hostname|certificate"),
        ):
            http.get(wrong, verify=cert, timeout=5)
    finally:
        server.clear()
        server.stop()
