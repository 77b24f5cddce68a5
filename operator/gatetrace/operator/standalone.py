"""Standalone mode: policies from a folder of YAML files, gateways by URL.

``gatetrace operator --standalone DIR --gateway NAME=URL ...`` runs the same
:class:`~gatetrace.operator.core.Reconciler` as the kopf operator, without
Kubernetes: the folder is polled for changes, each gateway is one "pod"
(namespace ``--namespace``, labels ``gatetrace.dev/gateway=NAME`` plus any
given), the per-gateway config that a ConfigMap would hold can be written to a
folder (point the gateway's ``tracingFile`` there), and status and events go
to a folder of JSON files and to the log.
"""

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gatetrace.operator import core as _core
from gatetrace.operator import plan as _plan
from gatetrace.operator import pods as _pods
from gatetrace.operator import records as _records
from gatetrace.policy import messages as _messages
from gatetrace.policy import yamlsafe as _yamlsafe

__all__ = [
    "FileSink",
    "GatewaySpec",
    "LastValidStore",
    "PolicyFolder",
    "StandaloneError",
    "parse_gateway",
]

log = logging.getLogger("gatetrace.operator.standalone")


class StandaloneError(ValueError):
    """A bad ``--gateway`` argument or an unreadable policy folder."""


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    name: str
    url: str
    namespace: str = "default"
    labels: Mapping[str, str] = field(default_factory=dict)

    def pod(self) -> _pods.GatewayTarget:
        labels = {_pods.GATEWAY_LABEL: self.name, **self.labels}
        return _pods.GatewayTarget(
            namespace=self.namespace,
            name=self.name,
            gateway=self.name,
            labels=labels,
            ready=True,
            admin_base=self.url,
        )


def parse_gateway(text: str, *, namespace: str = "default") -> GatewaySpec:
    """``NAME=URL`` or ``NAME=URL;k=v,k2=v2`` (extra pod labels for selectors)."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise StandaloneError(
            f"--gateway {text!r}: expected NAME=URL, e.g. gw=http://127.0.0.1:9901"
        )
    url, _, label_text = rest.partition(";")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StandaloneError(f"--gateway {text!r}: {url!r} is not an http(s) URL with a host")
    labels: dict[str, str] = {}
    for item in filter(None, label_text.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise StandaloneError(f"--gateway {text!r}: label {item!r} is not k=v")
        labels[key.strip()] = value.strip()
    return GatewaySpec(name, url.rstrip("/"), namespace, labels)


class PolicyFolder:
    """The TracingPolicy documents of ``*.yaml``/``*.yml`` files in one folder."""

    def __init__(self, path: pathlib.Path, *, default_namespace: str = "default") -> None:
        if not path.is_dir():
            raise StandaloneError(f"policy folder {str(path)!r} does not exist")
        self.path = path
        self.default_namespace = default_namespace
        self.known: dict[tuple[str, int], _plan.PolicyRef] = {}
        """The policy last read at each (file, document index)."""
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None

    def fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        entries = []
        for file in sorted(self.path.iterdir()):
            if file.suffix in (".yaml", ".yml") and file.is_file():
                stat = file.stat()
                entries.append((file.name, stat.st_mtime_ns, stat.st_size))
        return tuple(entries)

    def changed(self) -> bool:
        current = self.fingerprint()
        if current == self._fingerprint:
            return False
        self._fingerprint = current
        return True

    def load(self) -> list[_core.PolicyRecord]:
        """Every TracingPolicy document; a document that cannot be read or has the wrong
        shape becomes an invalid record naming the file, the document and the field.

        Such a document keeps the name it had when it was last readable (the same file
        and position), so a typo never looks like a deleted policy."""
        records: dict[_plan.PolicyRef, _core.PolicyRecord] = {}
        for file in sorted(self.path.iterdir()):
            if file.suffix not in (".yaml", ".yml") or not file.is_file():
                continue
            try:
                data = file.read_bytes()
            except OSError as e:
                documents = [_yamlsafe.Document(0, 1, error=f"cannot read: {e.strerror or e}")]
            else:
                documents = _yamlsafe.load_documents(data)
            for document in documents:
                record = self._record(file, document)
                if record is not None:
                    records[record.ref] = record
        return list(records.values())

    def _record(
        self, file: pathlib.Path, document: _yamlsafe.Document
    ) -> _core.PolicyRecord | None:
        where = (file.name, document.index)
        label = f"{file.name}#{document.index + 1}"
        fallback = self.known.get(where) or _plan.PolicyRef(
            self.default_namespace, f"{file.stem}-{document.index}"
        )
        if document.error is not None:
            return _core.PolicyRecord(fallback, 1, "", {}, errors=((label, document.error),))
        doc = document.value
        if _other_kind(doc):
            return None  # another kind of object sharing the folder
        problem = _shape_problem(doc)
        if problem is not None:
            loc, msg = problem
            body = {"spec": doc.get("spec")} if isinstance(doc, dict) else {}
            return _core.PolicyRecord(fallback, 1, "", body, errors=((f"{label} {loc}", msg),))
        doc = dict(doc)
        meta = dict(doc.get("metadata") or {})
        meta.setdefault("namespace", self.default_namespace)
        meta.setdefault("name", f"{file.stem}-{document.index}")
        meta.setdefault("generation", 1)
        doc["metadata"] = meta
        # without creationTimestamp, conflicts are settled by name
        record = _records.record_from_object(doc)
        self.known[where] = record.ref
        return record


def _other_kind(doc: Any) -> bool:
    """An object of another API group (a ConfigMap next to the policies): not ours."""
    if not isinstance(doc, dict):
        return False
    kind, api = doc.get("kind"), doc.get("apiVersion")
    return isinstance(kind, str) and isinstance(api, str) and not api.startswith("gatetrace.")


def _shape_problem(doc: Any) -> tuple[str, str] | None:
    """What keeps a document from being read as a TracingPolicy record, if anything."""
    if not isinstance(doc, dict):
        return "", f"expected a mapping (a TracingPolicy object), got {type(doc).__name__}"
    kind = doc.get("kind")
    if kind != "TracingPolicy":
        return "kind", f"expected 'TracingPolicy', got {_messages.echo(kind)}"
    meta = doc.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        return "metadata", f"expected a mapping, got {_messages.echo(meta)}"
    for key in ("name", "namespace"):
        value = (meta or {}).get(key)
        if value is not None and not isinstance(value, str):
            return f"metadata.{key}", f"expected a string, got {_messages.echo(value)}"
    return None


class LastValidStore:
    """The last valid content of each policy, kept in ``--status-dir`` so that separate
    ``--once`` runs keep an invalid policy's last valid generation in force too."""

    def __init__(self, folder: pathlib.Path | None) -> None:
        self.folder = folder / "last-valid" if folder is not None else None

    def _path(self, ref: _plan.PolicyRef) -> pathlib.Path | None:
        return self.folder / f"{ref.namespace}.{ref.name}.json" if self.folder else None

    def get(self, ref: _plan.PolicyRef) -> tuple[int, dict[str, Any]] | None:
        path = self._path(ref)
        if path is None:
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return int(doc["generation"]), dict(doc["body"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, record: _core.PolicyRecord) -> None:
        path = self._path(record.ref)
        if path is None or not record.valid:
            return
        payload = json.dumps({"generation": record.generation, "body": record.body})
        with contextlib.suppress(OSError):
            if path.read_text(encoding="utf-8") == payload:
                return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(payload, encoding="utf-8")
        os.replace(tmp, path)

    def places(self) -> dict[tuple[str, int], _plan.PolicyRef]:
        """Which policy each (file, document index) held when it was last readable."""
        if self.folder is None:
            return {}
        try:
            raw = json.loads((self.folder / "places.json").read_text(encoding="utf-8"))
            return {
                (str(file), int(index)): _plan.PolicyRef(str(namespace), str(name))
                for file, index, namespace, name in raw
            }
        except (OSError, ValueError, TypeError):
            return {}

    def remember_places(self, places: Mapping[tuple[str, int], _plan.PolicyRef]) -> None:
        if self.folder is None:
            return
        raw = sorted([f, i, ref.namespace, ref.name] for (f, i), ref in places.items())
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "places.json").write_text(json.dumps(raw), encoding="utf-8")

    def forget(self, ref: _plan.PolicyRef) -> None:
        path = self._path(ref)
        if path is not None:
            path.unlink(missing_ok=True)


class FileSink:
    """Results of standalone mode: ConfigMap-like files, status files, event log."""

    def __init__(
        self,
        *,
        config_dir: pathlib.Path | None = None,
        status_dir: pathlib.Path | None = None,
        on_event: Callable[[str, str, str, str], None] | None = None,
    ) -> None:
        self.config_dir = config_dir
        self.status_dir = status_dir
        self.on_event = on_event
        self.statuses: dict[str, Mapping[str, Any]] = {}
        self.events: list[tuple[str, str, str, str]] = []

    def _config_path(self, gateway: _core.GatewayKey) -> pathlib.Path | None:
        if self.config_dir is None:
            return None
        return self.config_dir / f"{gateway[0]}.{gateway[1]}.json"

    async def load_revision(self, gateway: _core.GatewayKey) -> tuple[int, str] | None:
        path = self._config_path(gateway)
        if path is None or not path.exists():
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return int(doc["revision"]), str(doc.get("combined", ""))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    async def store_config(
        self,
        gateway: _core.GatewayKey,
        revision: int,
        version: str,
        config: Mapping[str, Any],
        *,
        combined: str,
        sources: Sequence[Mapping[str, str]] = (),
    ) -> None:
        path = self._config_path(gateway)
        if path is None:
            return
        payload = _core.config_document(revision, version, config, combined, sources)
        try:
            if path.read_text(encoding="utf-8") == payload:
                return
        except OSError:
            pass
        tmp = path.with_suffix(".tmp")
        tmp.write_text(payload, encoding="utf-8")
        os.replace(tmp, path)  # atomic, like the kubelet's ..data symlink swap

    async def publish_status(self, ref: _plan.PolicyRef, status: Mapping[str, Any]) -> None:
        self.statuses[ref.key] = status
        if self.status_dir is not None:
            path = self.status_dir / f"{ref.namespace}.{ref.name}.json"
            path.write_text(json.dumps(status, indent=2, sort_keys=True), encoding="utf-8")

    async def emit_event(self, ref: _plan.PolicyRef, type_: str, reason: str, message: str) -> None:
        self.events.append((ref.key, type_, reason, message))
        log.info("%s %s %s: %s", type_, ref.key, reason, message)
        if self.on_event is not None:
            self.on_event(ref.key, type_, reason, message)


async def run_standalone(
    reconciler: _core.Reconciler,
    folder: PolicyFolder,
    gateways: Sequence[GatewaySpec],
    stop: asyncio.Event,
    *,
    poll_interval: float = 1.0,
    drift_interval: float = 30.0,
    retry_interval: float = 5.0,
    store: LastValidStore | None = None,
) -> None:
    """Feed the folder and the gateways to ``reconciler`` until ``stop`` is set."""
    for gateway in gateways:
        reconciler.upsert_pod(gateway.pod())
    sync_folder(reconciler, folder, store=store)
    loop_task = asyncio.create_task(
        reconciler.run(stop, drift_interval=drift_interval, retry_interval=retry_interval)
    )
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_interval)
            if folder.changed():
                sync_folder(reconciler, folder, force=True, store=store)
    finally:
        stop.set()
        await loop_task


def sync_folder(
    reconciler: _core.Reconciler,
    folder: PolicyFolder,
    *,
    force: bool = False,
    store: LastValidStore | None = None,
) -> bool:
    """Load the folder into the reconciler (upserts and deletions). True if it changed.

    An invalid document keeps its policy's last valid generation in force: the one the
    reconciler holds, else the one ``store`` kept from an earlier run."""
    if not force and not folder.changed():
        return False
    if store is not None and not folder.known:
        folder.known.update(store.places())
    records = {r.ref: r for r in folder.load()}
    if store is not None:
        store.remember_places(folder.known)
    for ref in list(reconciler.policies):
        if ref not in records:
            reconciler.delete_policy(ref)
            if store is not None:
                store.forget(ref)
    for ref, record in records.items():
        old = reconciler.policies.get(ref)
        if old is None or old.body != record.body or old.errors != record.errors:
            generation = old.generation + 1 if old is not None else record.generation
            new = dataclasses.replace(record, generation=generation, status={})
            if not new.valid and old is None and store is not None:
                kept = store.get(ref)
                if kept is not None:
                    new = dataclasses.replace(
                        new, last_valid=kept[1], last_valid_generation=kept[0]
                    )
            reconciler.upsert_policy(new)
            if store is not None:
                store.put(new)
    return True
