"""Finding the real helm binary: $GATETRACE_HELM, the e2e peer cache, or PATH."""

import glob
import os
import pathlib
import shutil
import subprocess
from typing import Any

import pytest
import yaml

CHART = pathlib.Path(__file__).resolve().parents[2] / "charts" / "gatetrace"


def helm_binary() -> str:
    explicit = os.environ.get("GATETRACE_HELM")
    if explicit:
        return explicit
    cache = os.environ.get("GATETRACE_PEERS_DIR") or os.path.expanduser("~/.cache/gatetrace-peers")
    built = sorted(glob.glob(os.path.join(cache, "helm-*", "bin", "helm")))
    if built:
        return built[-1]
    found = shutil.which("helm")
    if found:
        return found
    message = "helm is not built: run e2e/peers/build-all (CI does)"
    if os.environ.get("GATETRACE_E2E_REQUIRE"):
        pytest.fail(message)
    pytest.skip(message)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, check=check, timeout=120
    )


def render(*sets: str, namespace: str = "gatetrace-system") -> list[dict[str, Any]]:
    argv = ["template", "gt", str(CHART), "-n", namespace, "--include-crds"]
    for item in sets:
        argv += ["--set", item]
    out = helm(*argv).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]
