"""Properties over arbitrary input: no sampler raises, every answer is well formed."""

from hypothesis import given, settings
from hypothesis import strategies as st
from samplertools import ManualClock

from gatetrace.runtime import span, spancontext
from gatetrace.runtime.sampling import (
    AdaptiveSampler,
    CappedSampler,
    ConstSampler,
    DebugSampler,
    Decision,
    ParentBasedSampler,
    PerOperationSampler,
    PriorityBudget,
    PrioritySampler,
    ProbabilisticSampler,
    RateLimitingSampler,
    RequestInfo,
    RuleBasedSampler,
    RuleMatch,
    Sampler,
    SamplingParams,
    SamplingRule,
)

CLOCK = ManualClock()


def _samplers() -> list[Sampler]:
    rules = RuleBasedSampler(
        [
            SamplingRule(
                RuleMatch.create(path_prefix="/a", methods=["GET"], headers={"x-h": "v"}),
                RateLimitingSampler(5, clock=CLOCK),
                name="a",
            ),
            SamplingRule(RuleMatch.create(headers={"x-any": None}), ConstSampler(True)),
        ],
        default=AdaptiveSampler(10, clock=CLOCK),
    )
    chain = DebugSampler(
        PrioritySampler(
            CappedSampler(ParentBasedSampler(rules), 3, clock=CLOCK),
            PriorityBudget(2, clock=CLOCK),
        )
    )
    return [
        ConstSampler(False),
        ProbabilisticSampler(0.3),
        RateLimitingSampler(2, clock=CLOCK),
        AdaptiveSampler(4, clock=CLOCK),
        PerOperationSampler(0.2, lower_bound_traces_per_second=1, max_operations=4, clock=CLOCK),
        rules,
        chain,
    ]


SAMPLERS = _samplers()

headers = st.dictionaries(st.sampled_from(["x-h", "x-any", "other"]), st.text(max_size=5))
requests = st.none() | st.builds(
    RequestInfo, st.sampled_from(["GET", "post", "", "BREW"]), st.text(max_size=10), headers
)
parents = st.none() | st.builds(
    spancontext.SpanContext,
    st.integers(1, 2**128 - 1),
    st.integers(1, 2**64 - 1),
    st.sampled_from([True, False, None]),
    st.booleans(),
)
params = st.builds(
    SamplingParams,
    st.integers(1, 2**128 - 1),
    st.text(max_size=12),
    st.sampled_from(list(span.SpanKind)),
    parents,
    requests,
)


@settings(max_examples=300)
@given(params, st.floats(0, 5))
def test_no_sampler_raises_and_answers_are_well_formed(p: SamplingParams, step: float) -> None:
    CLOCK.advance(step)
    for sampler in SAMPLERS:
        result = sampler.should_sample(p)
        assert isinstance(result.decision, Decision)
        assert result.sampler_type
        assert isinstance(result.sampler_param, str | bool | int | float)
        assert result.reason
        assert (result.budget is not None) == (result.decision is Decision.RECORD_ONLY)
        assert sampler.describe()
