"""ParentBasedSampler: each upstream case goes where it is configured."""

import pytest
from samplertools import make_params

from gatetrace.runtime.sampling import base, const, parentbased, probabilistic


class _Recorder:
    """A real sampler that remembers it was asked."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    def should_sample(self, params: base.SamplingParams) -> base.SamplingResult:
        self.calls += 1
        return base.SamplingResult(base.Decision.SAMPLE, self.name, 1, self.name)

    def describe(self) -> str:
        return self.name


def test_defaults_follow_the_upstream_flag() -> None:
    sampler = parentbased.ParentBasedSampler(const.ConstSampler(False))
    sampled = sampler.should_sample(make_params(parent_sampled=True))
    assert (sampled.sampled, sampled.sampler_type, sampled.sampler_param, sampled.reason) == (
        True,
        "parent",
        True,
        "parent",
    )
    dropped = sampler.should_sample(make_params(parent_sampled=False))
    assert (dropped.sampled, dropped.sampler_param, dropped.reason) == (False, False, "parent")


def test_no_parent_and_deferred_parent_ask_the_root_sampler() -> None:
    sampler = parentbased.ParentBasedSampler(probabilistic.ProbabilisticSampler(0.0))
    for case in ("none", None):
        result = sampler.should_sample(make_params(parent_sampled=case))
        assert (result.sampled, result.sampler_type) == (False, "probabilistic")


@pytest.mark.parametrize(
    ("case", "asked"),
    [(True, "remote_sampled"), (False, "remote_not_sampled"), (None, "remote_deferred")],
)
def test_each_case_is_configurable(case: bool | None, asked: str) -> None:
    recorders = {
        name: _Recorder(name)
        for name in ("root", "remote_sampled", "remote_not_sampled", "remote_deferred")
    }
    sampler = parentbased.ParentBasedSampler(
        recorders["root"],
        remote_sampled=recorders["remote_sampled"],
        remote_not_sampled=recorders["remote_not_sampled"],
        remote_deferred=recorders["remote_deferred"],
    )
    assert sampler.should_sample(make_params(parent_sampled=case)).sampler_type == asked
    assert {n: r.calls for n, r in recorders.items()} == {n: int(n == asked) for n in recorders}
    assert sampler.should_sample(make_params()).sampler_type == "root"
    assert "remote_deferred=remote_deferred" in sampler.describe()
