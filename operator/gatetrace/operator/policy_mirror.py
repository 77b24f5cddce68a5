"""Every replica's own view of the TracingPolicies, for the remote sampling API.

kopf pauses the handlers of every operator replica but the leader (peering), so the
reconciler of a standby replica holds no policies. The sampling API must answer on every
replica, so each one lists and watches the policies itself, in a thread (the Kubernetes
client is synchronous): a full list, then a watch from its resourceVersion, relisting after
any error or an expired watch. It implements
:class:`gatetrace.operator.sampling_server.PolicyView`; the leader's reconciler still owns
status and conflicts.
"""

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch

from gatetrace.operator import kube as _kube
from gatetrace.operator import plan as _plan
from gatetrace.operator import records as _records
from gatetrace.operator import records_model as _records_model

__all__ = ["PolicyMirror"]

log = logging.getLogger("gatetrace.operator.mirror")

Records = dict[_plan.PolicyRef, _records_model.PolicyRecord]


class PolicyMirror:
    """The policies of ``namespaces`` (empty: the whole cluster), kept current by a watch."""

    def __init__(
        self, api: k8s.ApiClient, namespaces: tuple[str, ...] = (), *, retry_seconds: float = 1.0
    ) -> None:
        self._custom = k8s.CustomObjectsApi(api)
        self._namespaces = namespaces
        self._retry = retry_seconds
        self._policies: Records = {}
        self._epoch = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        """Serializes the read-modify-publish of the namespaces' threads."""
        self._threads: list[threading.Thread] = []

    @property
    def policies(self) -> Mapping[_plan.PolicyRef, _records_model.PolicyRecord]:
        return self._policies

    @property
    def policy_epoch(self) -> int:
        return self._epoch

    def start(self) -> "PolicyMirror":
        for namespace in self._namespaces or (None,):
            thread = threading.Thread(
                target=self._run, args=(namespace,), name=f"policy-mirror-{namespace}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()

    def _lister(self, namespace: str | None) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if namespace is None:
            return self._custom.list_cluster_custom_object, (
                _kube.GROUP,
                _kube.VERSION,
                _kube.PLURAL,
            )
        return self._custom.list_namespaced_custom_object, (
            _kube.GROUP,
            _kube.VERSION,
            namespace,
            _kube.PLURAL,
        )

    def _run(self, namespace: str | None) -> None:
        while not self._stop.is_set():
            try:
                for _ in self._follow(namespace):
                    if self._stop.is_set():
                        return
            except Exception as e:  # relist: the API server restarted, the watch expired...
                log.debug("policy watch (%s) ended: %s; relisting", namespace or "cluster", e)
            self._stop.wait(self._retry)

    def _follow(self, namespace: str | None) -> Iterator[None]:
        lister, args = self._lister(namespace)
        listed = lister(*args)
        fresh = [_records.record_from_object(obj) for obj in listed.get("items", ())]
        with self._lock:
            mine = {
                ref: record
                for ref, record in self._policies.items()
                if namespace is not None and ref.namespace != namespace
            }
            mine.update((record.ref, record) for record in fresh)
            self._publish(mine)
        version = listed.get("metadata", {}).get("resourceVersion")
        watcher = k8s_watch.Watch()  # type: ignore[no-untyped-call]
        stream = watcher.stream(  # type: ignore[no-untyped-call]
            lister, *args, resource_version=version, timeout_seconds=300
        )
        for event in stream:
            obj = event.get("object") or {}
            if event.get("type") == "ERROR":
                raise RuntimeError(f"watch error: {obj}")
            record = _records.record_from_object(obj)
            with self._lock:
                updated = dict(self._policies)
                if event.get("type") == "DELETED":
                    updated.pop(record.ref, None)
                else:  # an invalid generation keeps the last valid one this replica saw
                    updated[record.ref] = record.keeping(updated.get(record.ref))
                self._publish(updated)
            yield None

    def _publish(self, policies: Records) -> None:
        self._policies = policies  # one reference swap: readers see a whole dict
        self._epoch += 1
