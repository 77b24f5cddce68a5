"""Scenario 1: the TracingPolicy CRD against a real API server.

`kubectl apply -f crds/` works; every valid example applies; each invalid example is
rejected by the API server itself (OpenAPI schema or CEL) with a message naming the
field its file names; `kubectl get tp` shows the printer columns; `kubectl explain`
shows the model's descriptions.
"""

import json
import re
from pathlib import Path

import pytest
import yaml
from peers import servers
from scenarios import kubeobj

pytestmark = pytest.mark.e2e

EXAMPLES = sorted((kubeobj.REPO / "examples" / "policies").glob("*.yaml"))
INVALID = sorted((kubeobj.REPO / "tests" / "policy" / "invalid").glob("*.yaml"))
CRD_FILE = kubeobj.CRD_DIR / "tracingpolicies.gatetrace.dev.yaml"


def _namespaces(path: Path) -> set[str]:
    return {
        str(doc["metadata"].get("namespace") or "default")
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    }


@pytest.fixture(scope="module")
def crd(kube: servers.ControlPlane) -> servers.ControlPlane:
    out = kube.kubectl_run("apply", "-f", str(kubeobj.CRD_DIR))
    assert "tracingpolicies.gatetrace.dev" in out.stdout
    kube.kubectl_run(
        "wait", "--for=condition=Established", "crd/tracingpolicies.gatetrace.dev", "--timeout=60s"
    )
    return kube


def test_valid_examples_apply_and_show_printer_columns(crd: servers.ControlPlane) -> None:
    assert EXAMPLES, "no examples found"
    namespaces = set().union(*(_namespaces(p) for p in EXAMPLES))
    kubeobj.ensure_namespaces(crd, *sorted(namespaces))
    applied: list[tuple[str, str]] = []
    try:
        for path in EXAMPLES:
            out = crd.kubectl_run("apply", "-f", str(path), check=False)
            assert out.returncode == 0, f"{path.name}: {out.stderr}"
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    applied.append((doc["metadata"]["namespace"], doc["metadata"]["name"]))
                    # the server kept the spec as written (no field pruned away)
                    got = kubeobj.get(
                        crd, "tracingpolicy", doc["metadata"]["name"], doc["metadata"]["namespace"]
                    )
                    assert got["spec"] == doc["spec"], path.name

        crd_doc = yaml.safe_load(CRD_FILE.read_text())
        [version] = [v for v in crd_doc["spec"]["versions"] if v["served"]]
        expected = [c["name"].upper() for c in version["additionalPrinterColumns"]]
        assert expected, "the CRD declares no printer columns"
        table = crd.kubectl_run("get", "tp", "-A").stdout.splitlines()
        header = re.split(r"\s{2,}", table[0].strip())
        assert header == ["NAMESPACE", "NAME", *expected]
        rows = {tuple(re.split(r"\s+", line.strip())[:2]) for line in table[1:]}
        assert set(applied) <= rows
        wide = json.loads(crd.kubectl_run("get", "tp", "-A", "-o", "json").stdout)
        assert len(wide["items"]) >= len(applied)
    finally:
        for namespace, name in applied:
            kubeobj.delete(crd, "tracingpolicy", name, namespace)


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_example_is_rejected_naming_the_field(
    crd: servers.ControlPlane, path: Path
) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path.name
    field = first.removeprefix("# expect: ").split(" | ")[0]
    kubeobj.ensure_namespaces(crd, *sorted(_namespaces(path)))
    out = crd.kubectl_run("apply", "-f", str(path), check=False)
    assert out.returncode != 0, f"{path.name} was accepted: {out.stdout}"
    message = out.stderr
    if field == "apiVersion":
        # no such version is served: kubectl names the version it could not map
        doc = yaml.safe_load(path.read_text())
        assert f'version "{doc["apiVersion"]}"' in message, message
    else:
        assert _names_field(message, field), f"{path.name}: {field!r} not named in {message!r}"


def _names_field(message: str, field: str) -> bool:
    """The message names `field`: its whole path (a map key in brackets, as the API server
    writes it), or (a CEL rule on the parent object) the parent's path followed by the
    field's own name."""
    if field in message:
        return True
    parent, _, leaf = field.rpartition(".")
    if f"{parent}[{leaf}]" in message:  # a map key, as the API server writes it
        return True
    leaf = leaf.split("[")[0]
    at = message.find(f"{parent}: ")
    return (
        bool(parent) and at >= 0 and re.search(rf"\b{re.escape(leaf)}\b", message[at:]) is not None
    )


def test_kubectl_explain_shows_the_model_descriptions(crd: servers.ControlPlane) -> None:
    crd_doc = yaml.safe_load(CRD_FILE.read_text())
    [version] = [v for v in crd_doc["spec"]["versions"] if v["served"]]
    sampling = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["sampling"]
    assert sampling.get("description")

    def explained() -> str | None:
        out = crd.kubectl_run("explain", "tracingpolicy.spec.sampling", check=False)
        return out.stdout if out.returncode == 0 else None

    text = " ".join(kubeobj.eventually(explained, timeout=30.0).split())
    assert " ".join(sampling["description"].split())[:60] in text
    for field, schema in sampling["properties"].items():
        assert field in text
        if schema.get("description"):
            assert " ".join(schema["description"].split())[:40] in text, field
