"""Broken policy files: one per failure mode, each reported with its file, line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from kechuang.rules import load_policies
from kechuang.rules.checks import check_policy
from kechuang.rules.errors import PolicyFileError
from kechuang.rules.loader import load_policy

BAD = Path(__file__).parent / "bad_policies"


@pytest.mark.parametrize(
    ("name", "line", "words"),
    [
        ("band_gap.yaml", 9, ["band points", "gap between [1, 4) and [5, inf)"]),
        ("band_overlap.yaml", 8, ["band points", "overlap"]),
        ("timeline_hole.yaml", 9, ["parameter ratio", "no value from 2021-01-01 to 2021-12-31"]),
        ("timeline_overlap.yaml", 9, ["parameter ratio", "overlaps"]),
        ("never_true.yaml", 9, ["criterion impossible", "never be true"]),
        ("never_false.yaml", 9, ["criterion always", "never be false"]),
        ("unread_input.yaml", 5, ["input ip_class2_count", "never read"]),
        ("stacking_unknown_policy.yaml", 4, ["stacking: excludes 'no_such_policy'", "no policy here"]),
    ],
)
def test_static_check_names_file_line_and_reason(name, line, words):
    findings = [str(f) for f in check_policy(load_policy(BAD / name))]
    assert any(
        f.startswith(f"{BAD / name}:{line}:") and all(w in f for w in words) for f in findings
    ), findings


@pytest.mark.parametrize(
    ("name", "line", "words"),
    [
        ("unknown_name.yaml", 6, ["unknown name", "minimum_count"]),
        ("bad_expression.yaml", 6, ["not allowed", "Subquery"]),
        ("cycle.yaml", None, ["cycle", "a -> b -> a"]),
        ("indentation.yaml", 5, ["invalid YAML"]),
        ("timeline_second_open_start.yaml", 7, ["parameter ratio", "only the first value"]),
        ("relevance_on_itself.yaml", 6, ["input ip_class1_count", "relevant_when depends on", "ip_class1_count"]),
        ("given_not_input.yaml", 7, ["asked", "GIVEN() takes an input name"]),
        ("given_in_invalid_when.yaml", 6, ["input ip_class1_count", "GIVEN() is not allowed"]),
        ("text_with_comma.yaml", 5, ["input ip_class1_count", "keys other than zh and en", "quote"]),
        ("unknown_section.yaml", 5, ["unknown section 'parameter'", "parameters"]),
        ("stacking_bad_keep.yaml", 5, ["stacking", "keep is 'higher' or 'this', not 'hihger'"]),
        ("stacking_caps_no_total.yaml", 4, ["stacking", "'caps' needs 'total'"]),
        ("stacking_no_article.yaml", 4, ["stacking", "cite the article"]),
    ],
)
def test_a_bad_file_fails_to_load_with_file_line_and_reason(name, line, words):
    with pytest.raises(PolicyFileError) as caught:
        load_policy(BAD / name)
    message = str(caught.value)
    assert message.startswith(str(BAD / name))
    if line is not None:
        assert caught.value.line == line, message
    assert all(w in message for w in words), message


def test_the_shipped_policy_packs_pass_every_static_check():
    findings = [str(f) for p in load_policies().values() for f in check_policy(p)]
    assert findings == []
