"""ConstSampler: all or nothing, tagged const."""

import pytest
from samplertools import make_params

from gatetrace.runtime.sampling import base, const


@pytest.mark.parametrize("decision", [True, False])
def test_const_answers_the_same_for_every_trace(decision: bool) -> None:
    sampler = const.ConstSampler(decision)
    results = {sampler.should_sample(make_params(trace_id=t)) for t in (1, 2**64, 2**128 - 1)}
    assert len(results) == 1
    (result,) = results
    assert result.sampled is decision
    assert result.decision is (base.Decision.SAMPLE if decision else base.Decision.DROP)
    assert (result.sampler_type, result.sampler_param, result.reason) == (
        "const",
        decision,
        "const",
    )
    assert sampler.describe() == f"const({str(decision).lower()})"


def test_const_rejects_a_non_bool_naming_the_field() -> None:
    with pytest.raises(TypeError, match="decision"):
        const.ConstSampler(1)  # type: ignore[arg-type]
