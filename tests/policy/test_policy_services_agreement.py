"""The model and the CRD (schema + CEL) agree on random ``spec.services`` entries.

What ``gatetrace policy validate`` accepts, the API server must accept, and the other
way round: a service entry the CRD lets through must not be refused by the operator.
"""

from typing import Any

from crd_checker import crd_problems
from hypothesis import given, settings
from hypothesis import strategies as st
from test_policy_crd_agreement import _document, _model_accepts

from gatetrace.policy import crd

CRD = crd.build_crd()

SERVICE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "sampler": st.sampled_from(
        [
            {"type": "probabilistic", "rate": 0.5},
            {"type": "probabilistic", "rate": 1.5},
            {"type": "probabilistic", "rate": -0.1},
            {"type": "probabilistic"},
            {"type": "rateLimiting", "tracesPerSecond": 10},
            {"type": "rateLimiting", "tracesPerSecond": 40_000},
            {"type": "rateLimiting", "tracesPerSecond": -1},
            {"type": "rateLimiting"},
            {"type": "const", "decision": True},
        ]
    ),
    "operations": st.sampled_from(
        [
            [],
            [{"operation": "GET /a", "probability": 0.2}],
            [{"operation": "GET /a", "probability": 1.2}],
            [{"operation": "", "probability": 0.2}],
            [{"operation": "x" * 257, "probability": 0.2}],
            [{"operation": "GET /a"}],
        ]
    ),
    "defaultLowerBoundTracesPerSecond": st.sampled_from([0.0, 3.0, -1.0, 2_000_000.0]),
}
NAMES = st.sampled_from(["cart", "", "x" * 256, "x" * 257])


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({"name": NAMES}, optional=SERVICE_FIELDS))
def test_model_and_crd_agree_on_one_service(entry: dict[str, Any]) -> None:
    document = _document({"services": [entry]})
    by_model = _model_accepts(document)
    problems = crd_problems(CRD, document)
    assert by_model == (not problems), (entry, problems)


def test_the_probe_reaches_both_verdicts() -> None:
    """The property above is not vacuous: one entry passes both, one fails both."""
    good = _document(
        {"services": [{"name": "cart", "sampler": {"type": "probabilistic", "rate": 1}}]}
    )
    bad = _document(
        {"services": [{"name": "cart", "sampler": {"type": "probabilistic", "rate": 2}}]}
    )
    assert _model_accepts(good) and not crd_problems(CRD, good)
    assert not _model_accepts(bad) and crd_problems(CRD, bad)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4))
def test_model_and_crd_agree_on_repeated_names(names: list[str]) -> None:
    entries = [{"name": n, "sampler": {"type": "probabilistic", "rate": 0.1}} for n in names]
    document = _document({"services": entries})
    assert _model_accepts(document) == (not crd_problems(CRD, document))
    assert _model_accepts(document) == (len(set(names)) == len(names))
