"""The sampling package re-exports every sampler once."""

import gatetrace.runtime.sampling as sampling


def test_every_sampler_class_is_exported() -> None:
    expected = {
        "AdaptiveSampler",
        "CappedSampler",
        "ConstSampler",
        "DebugSampler",
        "ParentBasedSampler",
        "PerOperationSampler",
        "PrioritySampler",
        "ProbabilisticSampler",
        "RateLimitingSampler",
        "RuleBasedSampler",
    }
    assert expected <= set(sampling.__all__)
    for name in expected:
        cls = getattr(sampling, name)
        assert callable(cls.should_sample)
        assert callable(cls.describe)
