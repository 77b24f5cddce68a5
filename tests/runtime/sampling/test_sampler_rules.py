"""RuleBasedSampler: the first matching rule picks the sampler, else the default."""

from samplertools import make_params

from gatetrace.runtime.sampling import base, const, probabilistic, rules


def _request(
    path: str = "/", method: str = "GET", headers: dict[str, str] | None = None
) -> base.RequestInfo:
    return base.RequestInfo(method, path, headers or {})


def _sampler() -> rules.RuleBasedSampler:
    return rules.RuleBasedSampler(
        [
            rules.SamplingRule(
                rules.RuleMatch.create(path_prefix="/api/payments", methods=["post", "PUT"]),
                const.ConstSampler(True),
                name="payments",
            ),
            rules.SamplingRule(
                rules.RuleMatch.create(headers={"X-Debug-Tenant": "acme", "X-Canary": None}),
                probabilistic.ProbabilisticSampler(1.0),
                name="canary",
            ),
            rules.SamplingRule(
                rules.RuleMatch.create(path_prefix="/api"), const.ConstSampler(False)
            ),
        ],
        default=probabilistic.ProbabilisticSampler(0.5),
    )


def test_path_prefix_and_method_must_both_match() -> None:
    sampler = _sampler()
    hit = sampler.should_sample(make_params(request=_request("/api/payments/42", "POST")))
    assert (hit.sampled, hit.sampler_type, hit.sampler_param, hit.reason) == (
        True,
        "const",
        True,
        "rule:payments",
    )
    wrong_method = sampler.should_sample(make_params(request=_request("/api/payments", "GET")))
    assert wrong_method.reason == "rule:2"  # the unnamed third rule, by index
    assert not wrong_method.sampled


def test_headers_must_equal_or_be_present() -> None:
    sampler = _sampler()
    both = {"x-debug-tenant": "acme", "x-canary": ""}
    assert sampler.should_sample(make_params(request=_request("/x", headers=both))).reason == (
        "rule:canary"
    )
    for headers in ({"x-debug-tenant": "acme"}, {"x-debug-tenant": "other", "x-canary": "1"}):
        result = sampler.should_sample(
            make_params(NEVER_ID, request=_request("/x", headers=headers))
        )
        assert result.reason == "rate"  # the default's own reason


NEVER_ID = (1 << 64) - 1


def test_first_match_wins_over_later_ones() -> None:
    sampler = _sampler()
    # matches both "payments" and the catch-all "/api" rule
    assert (
        sampler.should_sample(make_params(request=_request("/api/payments", "PUT"))).reason
        == "rule:payments"
    )


def test_no_request_or_no_match_uses_the_default() -> None:
    sampler = _sampler()
    for params in (make_params(NEVER_ID), make_params(NEVER_ID, request=_request("/other"))):
        result = sampler.should_sample(params)
        assert (result.sampler_type, result.sampler_param, result.sampled) == (
            "probabilistic",
            0.5,
            False,
        )


def test_prefix_is_a_plain_string_prefix_and_methods_ignore_case() -> None:
    match = rules.RuleMatch.create(path_prefix="/api/pay", methods=["post"])
    assert match.matches(_request("/api/payments", "post"))
    assert not match.matches(_request("/API/payments", "POST"))
    assert not match.matches(None)
    assert rules.RuleMatch().matches(_request("/anything"))


def test_describe_lists_rules_in_order() -> None:
    text = _sampler().describe()
    assert text.index("rule:payments") < text.index("rule:canary") < text.index("rule:2")


class _Broken:
    def should_sample(self, params: base.SamplingParams) -> base.SamplingResult:
        raise RuntimeError("bug")

    def describe(self) -> str:
        return "broken"


def test_a_rule_whose_sampler_raises_keeps_the_sampler_error_reason() -> None:
    sampler = rules.RuleBasedSampler(
        [rules.SamplingRule(rules.RuleMatch.create(path_prefix="/"), _Broken(), name="all")],
        default=const.ConstSampler(True),
    )
    result = sampler.should_sample(make_params(request=_request("/x")))
    assert result is base.SAMPLER_ERROR
    assert result.reason == "sampler_error"
