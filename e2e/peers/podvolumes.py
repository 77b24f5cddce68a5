"""Pod volumes for the pod runner, written the way the kubelet writes them.

A ConfigMap, Secret, downward API or projected volume is a folder whose files are
symlinks into `..data`, itself a symlink to a timestamped folder: an update writes a
new timestamped folder and renames a fresh `..data` symlink over the old one, so a
reader sees either the old files or the new ones, never a mix (the kubelet's
AtomicWriter). `emptyDir` is a plain folder. `mount_script` turns a container's
`volumeMounts` into the shell commands that bind the folders at their `mountPath`
inside the container's own mount namespace.
"""

import base64
import os
import shlex
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

DATA = "..data"

# (kind, name) -> the object, or None when it does not exist
Lookup = Callable[[str, str], Mapping[str, Any] | None]


class VolumeError(RuntimeError):
    """A required ConfigMap/Secret of a volume is missing (the pod cannot start yet)."""


def write_atomic(folder: Path, files: Mapping[str, bytes]) -> bool:
    """Makes `folder` hold exactly `files` (relative paths), kubelet style; False when it
    already did (nothing written)."""
    folder.mkdir(parents=True, exist_ok=True)
    current = folder / DATA
    if current.is_symlink() and _read_all(current) == dict(files):
        return False
    stamp = folder / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    for rel, content in files.items():
        target = stamp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    tmp_link = folder / "..data_tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(stamp.name)
    old = current.resolve() if current.is_symlink() else None
    tmp_link.rename(current)  # the atomic swap
    for top in {rel.split("/", 1)[0] for rel in files}:
        link = folder / top
        if not link.is_symlink():
            link.symlink_to(f"{DATA}/{top}")
    for entry in folder.iterdir():  # keys that went away
        if entry.is_symlink() and entry.name != DATA and not entry.exists():
            entry.unlink()
    if old is not None and old != stamp.resolve():
        shutil.rmtree(old, ignore_errors=True)
    return True


def _read_all(data: Path) -> dict[str, bytes]:
    root = data.resolve()
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _items(data: Mapping[str, bytes], items: list[Mapping[str, Any]] | None) -> dict[str, bytes]:
    if not items:
        return dict(data)
    return {i["path"]: data[i["key"]] for i in items if i["key"] in data}


def _object_data(kind: str, obj: Mapping[str, Any]) -> dict[str, bytes]:
    if kind == "secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    found = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    found |= {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    return found


def _source_files(
    kind: str, source: Mapping[str, Any], namespace: str, lookup: Lookup
) -> dict[str, bytes] | None:
    """The files of a configMap/secret volume source; None when it is optional and absent."""
    name = source.get("name") if kind == "configmap" else source.get("secretName")
    obj = lookup(kind, str(name))
    if obj is None:
        if source.get("optional"):
            return None
        raise VolumeError(f"{kind} {namespace}/{name} not found")
    return _items(_object_data(kind, obj), source.get("items"))


def volume_files(
    volume: Mapping[str, Any],
    namespace: str,
    lookup: Lookup,
    field: Callable[[Mapping[str, Any]], str],
    token: Callable[[Mapping[str, Any]], bytes],
) -> dict[str, bytes] | None:
    """The files a volume holds right now; None for a folder the runner does not fill
    (emptyDir). `field` answers a downward API item, `token` a serviceAccountToken
    projection."""
    if "configMap" in volume:
        return _source_files("configmap", volume["configMap"], namespace, lookup) or {}
    if "secret" in volume:
        return _source_files("secret", volume["secret"], namespace, lookup) or {}
    if "downwardAPI" in volume:
        return {i["path"]: field(i).encode() for i in volume["downwardAPI"].get("items", [])}
    if "projected" in volume:
        files: dict[str, bytes] = {}
        for src in volume["projected"].get("sources", []):
            if "serviceAccountToken" in src:
                files[src["serviceAccountToken"]["path"]] = token(src["serviceAccountToken"])
            elif "downwardAPI" in src:
                files |= {i["path"]: field(i).encode() for i in src["downwardAPI"]["items"]}
            elif "configMap" in src:
                files |= _source_files("configmap", src["configMap"], namespace, lookup) or {}
            elif "secret" in src:
                files |= _source_files("secret", src["secret"], namespace, lookup) or {}
        return files
    if "emptyDir" in volume:
        return None
    raise VolumeError(f"volume {volume.get('name')!r}: unsupported source {sorted(volume)}")


_MOUNT_HELPERS = r"""
set -eu
# make_room PATH: PATH's parent exists; when it had to be created on a path the pod
# does not own, the nearest existing ancestor gets a private overlay first (the host's
# folders are never written).
make_room() {
    parent=$(dirname "$1")
    [ -d "$parent" ] && return 0
    a="$parent"
    while [ ! -e "$a" ]; do a=$(dirname "$a"); done
    layer="$OVERLAYS/$(echo "$a" | tr / _)"
    mkdir -p "$layer/upper" "$layer/work"
    mount -t overlay overlay -o "lowerdir=$a,upperdir=$layer/upper,workdir=$layer/work" "$a"
    mkdir -p "$parent"
}
bind_dir() { make_room "$2"; [ -d "$2" ] || mkdir "$2"; mount --bind "$1" "$2"; }
bind_file() { make_room "$2"; [ -e "$2" ] || : >"$2"; mount --bind "$1" "$2"; }
"""


def mount_script(
    mounts: list[tuple[Path, str, bool, bool]], overlays: Path, argv: list[str]
) -> str:
    """A /bin/sh script for `unshare --mount`: binds each (source, mountPath, is_file,
    read_only), then execs argv. A mount over a folder holding the sources (an emptyDir
    at /tmp, say) comes last, so it hides no source still to be bound."""

    def shadows(mount: tuple[Path, str, bool, bool]) -> bool:
        target = mount[1].rstrip("/") + "/"
        return any(str(m[0]).startswith(target) for m in mounts) or str(overlays).startswith(target)

    lines = [f"OVERLAYS={shlex.quote(str(overlays))}", _MOUNT_HELPERS]
    for source, target, is_file, read_only in sorted(mounts, key=shadows):
        verb = "bind_file" if is_file else "bind_dir"
        lines.append(f"{verb} {shlex.quote(str(source))} {shlex.quote(target)}")
        if read_only:
            lines.append(f"mount -o remount,bind,ro {shlex.quote(target)}")
    lines.append("exec " + " ".join(shlex.quote(a) for a in argv))
    return "\n".join(lines) + "\n"


def subpath_source(folder: Path, sub_path: str) -> Path:
    """The file a `subPath` mount binds: resolved once at start, as the kubelet does (a
    subPath mount does not see later updates)."""
    found = (folder / sub_path).resolve()
    if not str(found).startswith(str(folder.resolve()) + os.sep):
        raise VolumeError(f"subPath {sub_path!r} leaves its volume")
    return found
