"""The versioned peer cache that e2e/peers/build-all fills.

`$GATETRACE_PEERS_DIR` (default `~/.cache/gatetrace-peers`) holds one
`<name>-<version>/` folder per peer, marked complete by a `.complete` file; the
versions come from versions.sh beside this module.
"""

import os
from pathlib import Path

PEERS_SRC = Path(__file__).resolve().parent


class PeerMissingError(RuntimeError):
    """A peer server has not been built into the cache; `hint` says how to build it."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.hint = f"run e2e/peers/build-all {name}"
        super().__init__(f"peer {name!r} is not built: {path} is missing ({self.hint})")


def peers_dir() -> Path:
    """The cache folder holding one `<name>-<version>/` folder per built peer."""
    env = os.environ.get("GATETRACE_PEERS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "gatetrace-peers"


def versions() -> dict[str, str]:
    """The KEY=VALUE pairs of versions.sh, e.g. {"KUBE_VERSION": "v1.33.13", ...}."""
    pairs: dict[str, str] = {}
    for line in (PEERS_SRC / "versions.sh").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            pairs[key.strip()] = value.strip()
    return pairs


def artifact(name: str, version_key: str, relative: str) -> Path:
    """Path of a file of a built peer; raises PeerMissingError when that peer is not built."""
    folder = peers_dir() / f"{name}-{versions()[version_key]}"
    path = folder / relative
    if not (folder / ".complete").is_file() or not path.exists():
        raise PeerMissingError(name, path)
    return path


def helm_binary() -> Path:
    """The helm v3 client."""
    return artifact("helm", "HELM_VERSION", "bin/helm")
