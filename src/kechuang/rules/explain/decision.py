"""The decision ``evaluate()`` returns: a Python object, JSON-ready dict and readable text."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from kechuang.rules.explain.evaluate import Evaluation, _plain
from kechuang.rules.explain.render import render_text
from kechuang.rules.numbers import dumps_exact


def _jsonable(value: Any) -> Any:
    if isinstance(value, Fraction):
        return _plain(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass
class Decision:
    """One policy's decision about one enterprise, as of a date, with its explanation."""

    evaluation: Evaluation

    @property
    def policy_id(self) -> str:
        return self.evaluation.policy.id

    @property
    def verdict(self) -> str:
        return self.evaluation.verdict

    @property
    def missing_fields(self) -> list[str]:
        return self.evaluation.missing_fields

    @property
    def invalid_fields(self) -> list[str]:
        return self.evaluation.invalid_fields

    def to_dict(self) -> dict[str, Any]:
        """Every output field RULES.md names, plus ``trace`` and ``policy`` at top level."""
        ev = self.evaluation
        result = _jsonable(dict(ev.outputs))
        result["trace"] = {
            "criteria": [
                {
                    "id": c.name,
                    "title": {"zh": c.title_zh, "en": c.title_en},
                    "article": c.article,
                    "expression": c.expression,
                    "role": c.role,
                    "applies": c.applies,
                    "outcome": c.outcome,
                    "passed": c.passed,
                    "values": _jsonable(c.values),
                    "parameters": [
                        {
                            "name": u.name,
                            "value": _jsonable(u.value),
                            "since": u.start.isoformat() if u.start else None,
                            "until": u.end.isoformat() if u.end else None,
                            "article": u.article,
                        }
                        for u in c.parameters
                    ],
                    "flip": c.flip,
                }
                for c in ev.criteria
            ],
            "score_intervals": {
                name: [_jsonable(lo), _jsonable(hi)] for name, (lo, hi) in ev.scores.items()
            },
        }
        result["policy"] = {
            "id": ev.policy.id,
            "sha256": ev.policy.sha256,
            "as_of": ev.as_of.isoformat(),
        }
        return result

    def to_json(self, **kwargs: Any) -> str:
        return dumps_exact(self.to_dict(), ensure_ascii=False, **kwargs)

    def explain(self, lang: str = "zh") -> str:
        return render_text(self.evaluation, lang)

    def __str__(self) -> str:
        return self.explain("zh")
