"""The pod runner's parts that need no cluster: kubelet-style atomic volume updates, the
downward API, quantities, image matching and the mount script (run for real in a
private mount namespace)."""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from peers import podprobes, podspec, podvolumes

pytestmark = pytest.mark.e2e

POD: dict[str, Any] = {
    "metadata": {"name": "gw-1", "namespace": "ns", "uid": "u-1", "labels": {"app": "gw"}},
    "spec": {
        "nodeName": "node-0",
        "containers": [
            {
                "name": "gateway",
                "image": "ghcr.io/gatetrace/gatetrace:0.1.0",
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                "ports": [{"name": "gt-admin", "containerPort": 9901}],
            }
        ],
    },
    "status": {"podIP": "127.0.0.5", "podIPs": [{"ip": "127.0.0.5"}]},
}


def test_an_update_swaps_the_data_link_and_drops_removed_keys(tmp_path: Path) -> None:
    folder = tmp_path / "vol"
    assert podvolumes.write_atomic(folder, {"a": b"1", "b": b"2"})
    first = (folder / "..data").resolve()
    assert (folder / "a").read_bytes() == b"1" and (folder / "a").is_symlink()
    assert not podvolumes.write_atomic(folder, {"a": b"1", "b": b"2"}), "unchanged: no write"
    assert podvolumes.write_atomic(folder, {"a": b"3"})
    assert (folder / "a").read_bytes() == b"3"
    assert not (folder / "b").exists() and not (folder / "b").is_symlink()
    assert (folder / "..data").resolve() != first and not first.exists()


def test_downward_api_fields_and_resources() -> None:
    assert podspec.field_value(POD, "metadata.name") == "gw-1"
    assert podspec.field_value(POD, "metadata.labels['app']") == "gw"
    assert podspec.field_value(POD, "status.podIP") == "127.0.0.5"
    ref = {"resource": "limits.cpu"}
    assert podspec.resource_value(POD, ref, "32") == "1"  # 500m rounds up
    ref = {"resource": "limits.memory", "divisor": "1Mi"}
    assert podspec.resource_value(POD, ref, "0") == "256"
    with pytest.raises(podspec.SpecError, match="fieldPath"):
        podspec.field_value(POD, "spec.nope")


def test_environment_expands_and_adds_the_service_variables() -> None:
    container = {
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "WHO", "value": "pod $(POD)"},
        ]
    }
    env = podspec.environment(
        POD, container, lambda k, n: None, api_host="127.0.0.1", api_port=6443, allocatable={}
    )
    assert env["WHO"] == "pod gw-1"
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == (
        "127.0.0.1",
        "6443",
    )


def test_only_our_image_is_ours() -> None:
    assert podspec.is_ours(POD, "ghcr.io/gatetrace/gatetrace")
    other = {"spec": {"containers": [{"image": "nginx:1.27"}]}}
    assert not podspec.is_ours(other, "ghcr.io/gatetrace/gatetrace")
    assert podspec.image_repository("localhost:5000/x/y:1@sha256:ab") == "localhost:5000/x/y"


def test_named_probe_ports_resolve() -> None:
    container = POD["spec"]["containers"][0]
    assert podprobes.resolve_port("gt-admin", container) == 9901
    with pytest.raises(ValueError, match="no container port"):
        podprobes.resolve_port("nope", container)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_the_mount_script_binds_volumes_where_the_host_has_no_folder(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    podvolumes.write_atomic(vol, {"gateway.yaml": b"listen: x\n"})
    target = f"/etc/gatetrace-e2e-{tmp_path.name}/conf"
    script = podvolumes.mount_script(
        [(vol, target, False, True)], tmp_path / "overlays", ["cat", f"{target}/gateway.yaml"]
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if "Operation not permitted" in done.stderr:
        pytest.skip("no mount namespaces here")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "listen: x\n"
    assert not Path(target).parent.exists(), "the host's /etc was written"
