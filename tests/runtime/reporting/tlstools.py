"""Certificates the TLS tests make (with the e2e suite's :mod:`e2e.peers.pki`) and the
server side of their TLS connections.

Imported as a plain module, like :mod:`reportertools`.
"""

import ssl
from dataclasses import dataclass
from pathlib import Path

from e2e.peers import pki

SERVER_NAME = "collector.test"
"""The only name :attr:`Pki.named` is valid for (no IP address in it)."""


@dataclass(frozen=True, slots=True)
class Pki:
    """A CA with a server and a client certificate, and a second, unrelated CA."""

    ca: pki.CertPair
    server: pki.CertPair
    """Valid for 127.0.0.1 and localhost."""
    named: pki.CertPair
    """Valid for :data:`SERVER_NAME` only."""
    client: pki.CertPair
    """A client certificate (CN ``gateway-client``) for mutual TLS."""
    stranger_ca: pki.CertPair
    """A CA that signed none of the above."""
    stranger_client: pki.CertPair
    """A client certificate signed by :attr:`stranger_ca`."""


def make_pki(directory: Path) -> Pki:
    ca = pki.make_ca(directory, "gatetrace-test-ca")
    stranger_dir = directory / "stranger"
    stranger_dir.mkdir()
    stranger = pki.make_ca(stranger_dir, "someone-else-ca")
    return Pki(
        ca=ca,
        server=pki.issue(
            ca,
            directory,
            "server",
            common_name="collector",
            dns_names=("localhost",),
            ip_addresses=("127.0.0.1",),
            server=True,
        ),
        named=pki.issue(
            ca, directory, "named", common_name=SERVER_NAME, dns_names=(SERVER_NAME,), server=True
        ),
        client=pki.issue(ca, directory, "client", common_name="gateway-client"),
        stranger_ca=stranger,
        stranger_client=pki.issue(stranger, stranger_dir, "client", common_name="stranger"),
    )


def server_context(
    server: pki.CertPair, *, client_ca: pki.CertPair | None = None
) -> ssl.SSLContext:
    """A server context for ``server``; with ``client_ca``, client certificates signed by
    it are required (mutual TLS)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.cert, server.key)
    if client_ca is not None:
        context.load_verify_locations(cafile=client_ca.cert)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
