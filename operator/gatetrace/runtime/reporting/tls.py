"""Client TLS for the reporters' transports: which CA to trust, a client certificate
for mutual TLS, the name to verify, and (only when asked for) no verification.

:class:`TlsSettings` says where the PEM material comes from: files on the
gateway's filesystem (``*_file``) or PEM text (``*_pem``, what the operator
reads from a Secret). :func:`client_context` turns it into an
:class:`ssl.SSLContext` once, when the reporter is built, so a missing file or
a certificate that does not match its key is a configuration error that names
the field, not a failure found at the first export. Without settings an https
endpoint is verified against the system's CAs, as any client does.

Files are usually a mounted Secret that the kubelet (or cert-manager behind it)
rotates in place: :class:`Reloading` keeps what was built from them and builds
it again when one of them changes (checked at most every
``reload_interval`` seconds, when the transport is about to connect); a
rotation that leaves unusable files keeps the last good one and logs why.
"""

import logging
import os
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Reloading", "TlsSettings", "client_context", "load_pem_file"]

_log = logging.getLogger(__name__)
_MAX_PEM_BYTES = 1024 * 1024
"""A CA bundle larger than this is not a CA bundle (the Mozilla one is ~220 KiB)."""


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS options of one reporter; every field is optional."""

    ca_file: str | None = None
    """PEM bundle of the CAs to trust instead of the system's."""
    ca_pem: str | None = None
    """The same as PEM text."""
    cert_file: str | None = None
    """PEM client certificate (chain) for mutual TLS; needs the key."""
    cert_pem: str | None = None
    """The same as PEM text."""
    key_file: str | None = None
    """PEM private key of the client certificate."""
    key_pem: str | None = None
    """The same as PEM text."""
    server_name: str | None = None
    """The name the server's certificate must carry (and the SNI sent), when it is not
    the endpoint's host (a collector reached by IP or through a tunnel)."""
    insecure_skip_verify: bool = False
    """Accept any server certificate. Only for tests: the connection is encrypted but
    anyone on the path can read it."""
    reload_interval: float = 10.0
    """Seconds between checks of the ``*_file`` files for a rotation."""

    @property
    def has_client_certificate(self) -> bool:
        return bool(self.cert_file or self.cert_pem)

    @property
    def files(self) -> tuple[str, ...]:
        """The files the material is read from."""
        return tuple(p for p in (self.ca_file, self.cert_file, self.key_file) if p)


def load_pem_file(path: str, field: str) -> str:
    """The PEM text in ``path``; ValueError naming ``field`` when it cannot be read."""
    try:
        with open(path, "rb") as file:
            data = file.read(_MAX_PEM_BYTES + 1)
    except OSError as e:
        raise ValueError(f"tls.{field}: cannot read {path}: {e.strerror or e}") from e
    if len(data) > _MAX_PEM_BYTES:
        raise ValueError(f"tls.{field}: {path} is larger than {_MAX_PEM_BYTES} bytes")
    text = data.decode("ascii", "replace")
    if "-----BEGIN " not in text:
        raise ValueError(f"tls.{field}: {path} holds no PEM block (-----BEGIN ...)")
    return text


def _pem(pem: str | None, path: str | None, field: str) -> str | None:
    if pem is not None:
        if "-----BEGIN " not in pem:
            raise ValueError(f"tls.{field}: not PEM text (no -----BEGIN ... line)")
        return pem
    if path is not None:
        return load_pem_file(path, f"{field}File")
    return None


def _load_trust(context: ssl.SSLContext, settings: TlsSettings) -> None:
    ca = _pem(settings.ca_pem, settings.ca_file, "ca")
    if ca is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return
    try:
        context.load_verify_locations(cadata=ca)
    except (ssl.SSLError, ValueError) as e:
        raise ValueError(f"tls.ca: no usable CA certificate: {_ssl_reason(e)}") from e


def _load_client_certificate(context: ssl.SSLContext, settings: TlsSettings) -> None:
    cert = _pem(settings.cert_pem, settings.cert_file, "cert")
    key = _pem(settings.key_pem, settings.key_file, "key")
    if cert is None and key is None:
        return
    if cert is None or key is None:
        missing = "cert" if cert is None else "key"
        raise ValueError(f"tls.{missing}: a client certificate needs both cert and key")
    # ssl loads a certificate chain from files only: hand it a private temporary
    # directory for the moment of loading (removed before this returns)
    with tempfile.TemporaryDirectory(prefix="gatetrace-tls-") as directory:
        cert_path = os.path.join(directory, "tls.crt")
        key_path = os.path.join(directory, "tls.key")
        for path, text in ((cert_path, cert), (key_path, key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii", errors="replace") as file:
                file.write(text)
        try:
            context.load_cert_chain(cert_path, key_path)
        except (ssl.SSLError, ValueError) as e:
            raise ValueError(
                f"tls.cert/tls.key: not a usable certificate and matching private key: "
                f"{_ssl_reason(e)}"
            ) from e


def _ssl_reason(error: Exception) -> str:
    reason = getattr(error, "reason", None)
    return str(reason) if reason else str(error) or type(error).__name__


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """An SSL context for connections to a reporter endpoint.

    Raises ValueError naming the ``tls.*`` field when a file cannot be read or the
    PEM material is unusable (never echoing key material).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.insecure_skip_verify:
        _log.warning("a reporter accepts any server certificate (insecureSkipVerify is set)")
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        _load_trust(context, settings)
    _load_client_certificate(context, settings)
    return context


_Built = TypeVar("_Built")
_Stamp = tuple[tuple[int, int, int] | None, ...]


def _stamp(paths: tuple[str, ...]) -> _Stamp:
    """What tells a file's content changed: inode (the kubelet swaps a symlink), mtime,
    size; None for a file that cannot be read now."""
    out: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


class Reloading(Generic[_Built]):
    """``build(settings)`` kept, and built again after its files changed.

    The first build happens here and raises (a configuration error); later ones
    that fail keep the last good value and log the reason once per change.
    """

    __slots__ = ("_build", "_clock", "_next_check", "_stamp", "settings", "value")

    def __init__(
        self,
        settings: TlsSettings,
        build: Callable[[TlsSettings], _Built],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._build = build
        self._clock = clock
        self._stamp = _stamp(settings.files)
        self.value: _Built = build(settings)
        self._next_check = clock() + settings.reload_interval

    def refresh(self) -> bool:
        """Build again if a file changed since the last build (at most one check per
        ``reload_interval``); True when :attr:`value` is new."""
        if not self.settings.files:
            return False
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + self.settings.reload_interval
        stamp = _stamp(self.settings.files)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.value = self._build(self.settings)
        except ValueError as e:  # half-written rotation, a key that is not the cert's...
            _log.warning("reporter TLS files changed but are not usable, kept the last: %s", e)
            return False
        _log.info("reporter TLS files changed: reloaded %s", ", ".join(self.settings.files))
        return True
