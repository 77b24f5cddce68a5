"""The rule-based sampler: the first rule matching the request picks the sampler.

A :class:`RuleMatch` tests the gateway's :class:`~.base.RequestInfo`: a path
prefix (plain string prefix, as route prefixes are), a set of methods
(case-insensitive) and headers that must be present (value ``None``) or equal
a value exactly. Every criterion set must hold; header names compare
case-insensitively (the request's headers are case-insensitive or lowercase,
see ``RequestInfo``). A span started without request information (not a
gateway server span) matches no rule and goes to the default sampler.

The chosen sampler's type and parameter are kept; the reason becomes
``rule:<name>`` so the decision metrics show which rule fired.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gatetrace.runtime.sampling import base as _base

__all__ = ["RuleBasedSampler", "RuleMatch", "SamplingRule"]


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """Which requests a rule applies to; ``None`` criteria are not checked."""

    path_prefix: str | None = None
    """The request path must start with this."""
    methods: frozenset[str] | None = None
    """Upper-case HTTP methods; the request's method must be one of them."""
    headers: tuple[tuple[str, str | None], ...] = ()
    """``(lowercase name, value)``: present with exactly that value, or present at all (None)."""

    @classmethod
    def create(
        cls,
        *,
        path_prefix: str | None = None,
        methods: Iterable[str] | None = None,
        headers: Mapping[str, str | None] | None = None,
    ) -> "RuleMatch":
        """Normalise user input: method names upper-cased, header names lower-cased."""
        return cls(
            path_prefix,
            None if methods is None else frozenset(m.upper() for m in methods),
            tuple((name.lower(), value) for name, value in (headers or {}).items()),
        )

    def matches(self, request: _base.RequestInfo | None) -> bool:
        if request is None:
            return False
        prefix = self.path_prefix
        if prefix is not None and not request.path.startswith(prefix):
            return False
        methods = self.methods
        if methods is not None and request.method.upper() not in methods:
            return False
        if self.headers:
            got = request.headers
            for name, wanted in self.headers:
                value = got.get(name)
                if value is None or (wanted is not None and value != wanted):
                    return False
        return True


@dataclass(frozen=True, slots=True)
class SamplingRule:
    """Use ``sampler`` for requests that ``match``; ``name`` labels its decisions."""

    match: RuleMatch
    sampler: _base.Sampler
    name: str = ""


class RuleBasedSampler:
    """Ask the sampler of the first matching rule; ``default`` when none matches."""

    __slots__ = ("_reasons", "default", "rules")

    def __init__(self, rules: Sequence[SamplingRule], default: _base.Sampler) -> None:
        self.rules = tuple(rules)
        self.default = default
        self._reasons = tuple(f"rule:{rule.name or index}" for index, rule in enumerate(self.rules))

    def should_sample(self, params: _base.SamplingParams) -> _base.SamplingResult:
        request = params.request
        if request is not None:
            for index, rule in enumerate(self.rules):
                if rule.match.matches(request):
                    result = _base.decide(rule.sampler, params)
                    if result is _base.SAMPLER_ERROR:
                        return result  # counted as the sampler's fault, not as the rule's
                    return result._replace(reason=self._reasons[index])
        return _base.decide(self.default, params)

    def describe(self) -> str:
        rules = ", ".join(
            f"{reason}={rule.sampler.describe()}"
            for reason, rule in zip(self._reasons, self.rules, strict=True)
        )
        return f"rules([{rules}], default={self.default.describe()})"
