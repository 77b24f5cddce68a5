"""The OpenTelemetry peer's own virtualenv, so the project's dependencies stay unchanged.

The peer proxy (``benchmarks/otel_proxy.py``) needs the OpenTelemetry aiohttp
instrumentations and exporters, which the project does not depend on. They go
into a separate venv under ``~/.cache/gatetrace-bench/`` (``$GATETRACE_BENCH_CACHE``
overrides the directory), built with this interpreter's ``python -m venv`` and
``pip install`` of the pinned list below. The directory name carries a hash of
the list (and of this interpreter's version), so a changed pin builds a new venv
and an unchanged one is reused. aiohttp is pinned to the version this
interpreter runs, so the peer and our gateway serve HTTP with the same code.
"""

import hashlib
import importlib.metadata
import os
import pathlib
import subprocess
import sys

OTEL = "1.27.0"
"""The SDK/API/exporter release, the one the project's other OpenTelemetry peers use."""
CONTRIB = "0.48b0"
"""The opentelemetry-python-contrib release that goes with :data:`OTEL`."""


def requirements() -> list[str]:
    """The pinned requirement list of the peer venv."""
    return [
        f"aiohttp=={importlib.metadata.version('aiohttp')}",
        f"opentelemetry-api=={OTEL}",
        f"opentelemetry-sdk=={OTEL}",
        f"opentelemetry-exporter-zipkin-json=={OTEL}",
        f"opentelemetry-exporter-otlp-proto-http=={OTEL}",
        f"opentelemetry-instrumentation=={CONTRIB}",
        f"opentelemetry-instrumentation-aiohttp-server=={CONTRIB}",
        f"opentelemetry-instrumentation-aiohttp-client=={CONTRIB}",
    ]


def _directory(pins: list[str]) -> pathlib.Path:
    cache = os.environ.get("GATETRACE_BENCH_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "gatetrace-bench"
    )
    key = "\n".join([sys.version.split()[0], *pins])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return pathlib.Path(cache) / f"otel-venv-{digest}"


def python() -> str:
    """The peer venv's interpreter, creating the venv first when it is not there yet
    (a minute or two of ``pip install`` from PyPI, once)."""
    pins = requirements()
    venv = _directory(pins)
    interpreter = venv / "bin" / "python"
    done = venv / ".installed"
    if done.exists() and done.read_text() == "\n".join(pins):
        return str(interpreter)
    print(f"building the OpenTelemetry peer venv in {venv} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(interpreter), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
        check=True,
        timeout=900,
    )
    done.write_text("\n".join(pins))
    return str(interpreter)


if __name__ == "__main__":
    print(python())
