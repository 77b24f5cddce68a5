"""`gatetrace demo` as a user runs it: a subprocess, its report, and nothing left behind."""

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

DEMO = [sys.executable, "-m", "gatetrace.cli", "demo"]
ENV = {**os.environ, "PYTHONWARNINGS": "error"}


def _ports(text: str) -> list[int]:
    return [
        int(p) for p in re.findall(r"^(?:gateway|admin): http://127\.0\.0\.1:(\d+)", text, re.M)
    ]


def _closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.timeout(240)
def test_demo_report_and_live_policy_change() -> None:
    result = subprocess.run(
        [*DEMO, "--requests", "200", "--seed", "7", "--change-policy"],
        capture_output=True,
        text=True,
        timeout=200,
        env=ENV,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:]
    assert "revision 1 Applied" in out
    assert "Clamped: default/api-gateway: sampling.sampler.rate clamped 1.0 -> 0.5" in out
    # a representative waterfall crossing every demo service
    section = out.split("-- a representative trace", 1)[1].split("\n\n", 1)[0]
    for service in ("api-gateway:", "frontend:", "users:", "orders:", "payments:"):
        assert service in section, section
    assert "kept by priority: error" in out
    # the failing request's whole path, kept from the services' retro buffers
    assert re.search(r"kept retroactively from the buffers of .*orders.*payments", out)
    assert re.search(r"api-gateway -> frontend\s+\d+ calls", out)
    assert re.search(r"GET /api/checkout\s+\d+", out)
    assert re.search(r"probabilistic\s+rate\s+sample\s+\d+", out)
    exported = re.search(r"memory#0\s+exported (\d+)", out)
    assert exported and int(exported.group(1)) > 0
    # the services' spans reach the gateway over OTLP/HTTP, none refused
    received = re.search(
        r"received over OTLP/HTTP \(POST /v1/traces\): (\d+) stored, 0 refused", out
    )
    assert received and int(received.group(1)) > 0, out[-2000:]
    assert "revision 2 Applied" in out
    share = re.search(r"sampled share of new root spans: (\d+)% -> (\d+)%", out)
    assert share and int(share.group(2)) > int(share.group(1))
    assert all(_closed(port) for port in _ports(out))


@pytest.mark.timeout(120)
def test_ctrl_c_while_serving_leaves_nothing_behind() -> None:
    with subprocess.Popen(
        [*DEMO, "--requests", "40", "--serve", "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    ) as proc:
        _serve_then_interrupt(proc)


def _until_serving(proc: "subprocess.Popen[str]") -> str:
    """The demo's output up to the line saying it serves (at most 90 s)."""
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "Ctrl-C to stop." in line:
            break
    return "".join(seen)


def _serve_then_interrupt(proc: "subprocess.Popen[str]") -> None:
    text = _until_serving(proc)
    assert "trace page: http://127.0.0.1:" in text, text
    ports = _ports(text)
    assert len(ports) == 2
    assert not any(_closed(port) for port in ports)  # serving
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert code == 0
    assert all(_closed(port) for port in ports)


def test_bad_arguments_are_named() -> None:
    result = subprocess.run(
        [*DEMO, "--policies", "/nonexistent"], capture_output=True, text=True, timeout=60, env=ENV
    )
    assert result.returncode == 2
    assert "--policies: /nonexistent is not a folder" in result.stderr


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--jaeger-agent", "nohostport", "argument --jaeger-agent: expected HOST:PORT"),
        ("--jaeger-agent", "host:99999", "argument --jaeger-agent: expected HOST:PORT"),
        ("--zipkin", "notaurl", "argument --zipkin: expected an http(s)://"),
        ("--otlp", "ftp://x/v1/traces", "argument --otlp: expected an http(s)://"),
        ("--requests", "0", "argument --requests: must be an integer >= 1, got '0'"),
        ("--concurrency", "many", "argument --concurrency: must be an integer >= 1, got 'many'"),
        ("--seed", "x", "argument --seed: invalid int value: 'x'"),
    ],
)
def test_bad_backend_flags_are_refused_by_name(flag: str, value: str, message: str) -> None:
    result = subprocess.run(
        [*DEMO, flag, value], capture_output=True, text=True, timeout=60, env=ENV
    )
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(120)
def test_serving_survives_a_broken_policy_file() -> None:
    """`metadata: oops` dropped into the watched folder is an invalid record, not a crash."""
    with subprocess.Popen(
        [*DEMO, "--requests", "20", "--serve", "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    ) as proc:
        text = _until_serving(proc)
        folder = pathlib.Path(re.search(r"policies:\s+(\S+)", text).group(1))  # type: ignore[union-attr]
        (folder / "99-broken.yaml").write_text(
            "apiVersion: gatetrace.dev/v1alpha1\nkind: TracingPolicy\nmetadata: oops\nspec: {}\n"
        )
        time.sleep(4)  # a few polls of the folder
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        ports = _ports(text)
        assert not any(_closed(port) for port in ports)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0


@pytest.mark.timeout(120)
def test_a_broken_policy_at_start_is_reported_not_a_crash(tmp_path: pathlib.Path) -> None:
    root = pathlib.Path(__file__).resolve().parents[2]
    for policy in (root / "examples" / "demo").glob("*.yaml"):
        (tmp_path / policy.name).write_text(policy.read_text())
    (tmp_path / "99-broken.yaml").write_text(
        "apiVersion: gatetrace.dev/v1alpha1\nkind: TracingPolicy\nmetadata: oops\nspec: {}\n"
    )
    result = subprocess.run(
        [*DEMO, "--policies", str(tmp_path), "--requests", "10", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=100,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "99-broken.yaml#1 metadata: expected a mapping, got 'oops'" in result.stdout
