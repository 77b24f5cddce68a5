"""The model and the CRD (schema + CEL) agree on random samplers, reporters and specs.

What ``gatetrace policy validate`` accepts, the API server must accept too;
and for the rules mirrored in CEL, what the API server accepts the model does.
"""

from typing import Any

import pydantic
from crd_checker import crd_problems
from hypothesis import given, settings
from hypothesis import strategies as st

from gatetrace.policy import crd, model

CRD = crd.build_crd()

SAMPLER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "decision": st.booleans(),
    "rate": st.sampled_from([-0.5, 0.0, 0.3, 1.0, 1.5]),
    "tracesPerSecond": st.sampled_from([-1, 0, 5, 2_000_000]),
    "targetTracesPerSecond": st.sampled_from([0, 10]),
    "minRate": st.sampled_from([0.01, 0.4, 2.0]),
    "maxRate": st.sampled_from([0.2, 1.0]),
    "defaultRate": st.sampled_from([0.1, -1.0]),
    "lowerBoundTracesPerSecond": st.sampled_from([0, 1.5]),
    "maxOperations": st.sampled_from([0, 100]),
}
REPORTER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "host": st.sampled_from(["agent", "bad host"]),
    "port": st.sampled_from([0, 6831, 70000]),
    "endpoint": st.sampled_from(
        ["http://c:1/x", "https://c/v1/traces", "ftp://c/x", "https://c:4317", "http://c"]
    ),
    "gzip": st.booleans(),
    "headers": st.sampled_from([{}, {"authorization": "x"}, {"bad header": "x"}]),
    "headersFrom": st.sampled_from([{"secretName": "otlp"}, {"secretName": "Bad_Name"}]),
    "tls": st.sampled_from(
        [{}, {"caFile": "/etc/ca.crt"}, {"insecureSkipVerify": True}, {"certFile": "/c"}]
    ),
    "maxSpans": st.sampled_from([0, 10]),
    "maxAgeSeconds": st.sampled_from([10, 10_000_000]),
}


def _objects(
    types: list[str], fields: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"type": st.sampled_from(types)}, optional=fields)


samplers = _objects(
    ["const", "probabilistic", "rateLimiting", "adaptive", "perOperation"], SAMPLER_FIELDS
)
reporters = _objects(
    ["jaegerAgent", "jaegerCollector", "zipkin", "otlpHttp", "otlpGrpc", "memory", "log"],
    REPORTER_FIELDS,
)
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
TLS_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "ca": st.just(PEM),
    "caFile": st.just("/etc/ssl/ca.crt"),
    "cert": st.just(PEM),
    "certFile": st.just("/etc/tls/tls.crt"),
    "key": st.just(PEM.replace("CERTIFICATE", "PRIVATE KEY")),
    "keyFile": st.just("/etc/tls/tls.key"),
    "secretName": st.just("otel-client"),
    "serverName": st.just("otel.observability.svc"),
    "insecureSkipVerify": st.booleans(),
}


def _document(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": model.API_VERSION,
        "kind": model.KIND,
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": spec,
    }


def _model_accepts(document: dict[str, Any]) -> bool:
    try:
        model.TracingPolicy.model_validate(document, by_alias=True, by_name=False)
    except pydantic.ValidationError:
        return False
    return True


def _adaptive_defaults_clash(sampler: dict[str, Any]) -> bool:
    # minRate/maxRate checked against each other's *default* is beyond CEL
    # (the rule cannot see defaults it does not store).
    return sampler["type"] == "adaptive" and ("minRate" in sampler) != ("maxRate" in sampler)


@settings(max_examples=80, deadline=None)
@given(samplers)
def test_samplers(sampler: dict[str, Any]) -> None:
    document = _document({"sampling": {"sampler": sampler}})
    by_model = _model_accepts(document)
    by_crd = not crd_problems(CRD, document)
    if by_model:
        assert by_crd, crd_problems(CRD, document)
    elif not _adaptive_defaults_clash(sampler):
        assert not by_crd, sampler


@settings(max_examples=80, deadline=None)
@given(st.lists(reporters, max_size=3))
def test_reporters(items: list[dict[str, Any]]) -> None:
    document = _document({"reporters": items})
    by_model = _model_accepts(document)
    by_crd = not crd_problems(CRD, document)
    if by_model:
        assert by_crd, crd_problems(CRD, document)
    # The model also normalises (header names lower-cased, jaegerAgent's
    # default port in duplicate detection), so only the first direction is exact.


@settings(max_examples=120, deadline=None)
@given(
    st.fixed_dictionaries({}, optional=TLS_FIELDS),
    st.sampled_from(["otlpHttp", "otlpGrpc", "zipkin", "jaegerCollector"]),
    st.sampled_from(["https://otel:4317", "http://otel:4318"]),
)
def test_reporter_tls_rules_agree_both_ways(tls: dict[str, Any], kind: str, endpoint: str) -> None:
    """Every TLS rule is mirrored in CEL, so here both directions are exact."""
    document = _document({"reporters": [{"type": kind, "endpoint": endpoint, "tls": tls}]})
    by_model = _model_accepts(document)
    assert by_model == (not crd_problems(CRD, document)), (tls, kind, endpoint)


@settings(max_examples=80, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "batching": st.fixed_dictionaries(
                {},
                optional={
                    "maxQueueSize": st.sampled_from([0, 100, 4096]),
                    "maxBatchSize": st.sampled_from([50, 512, 5000]),
                },
            ),
            "baggage": st.fixed_dictionaries(
                {},
                optional={
                    "allow": st.sampled_from([["*"], ["a"], ["a", "b"], ["a", "a"]]),
                    "deny": st.sampled_from([[], ["a"], ["c"]]),
                    "tagKeys": st.sampled_from([[], ["a"], ["c"]]),
                },
            ),
            "propagation": st.fixed_dictionaries(
                {},
                optional={
                    "extract": st.sampled_from([[], ["b3"], ["b3", "b3"], ["w3c"]]),
                    "inject": st.sampled_from([[], ["tracecontext", "jaeger"]]),
                },
            ),
            "selector": st.sampled_from(
                [
                    {},
                    {"matchLabels": {"app": "gw"}},
                    {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
                    {"matchExpressions": [{"key": "a", "operator": "In"}]},
                    {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
                ]
            ),
        },
    )
)
def test_specs(spec: dict[str, Any]) -> None:
    document = _document(spec)
    by_model = _model_accepts(document)
    by_crd = not crd_problems(CRD, document)
    assert by_model == by_crd, (spec, crd_problems(CRD, document))
