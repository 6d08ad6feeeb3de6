"""Policy YAML as written: decimal numbers, real dates, and the line of every key.

A YAML float is read through its text into a ``Decimal`` (never a binary float); a date
that does not exist, a duplicate key or bad YAML fails with the file and the line.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from kechuang.rules.errors import PolicyFileError


class LineMap(dict):
    """A mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


# libyaml's parser, where installed, reads a policy file several times faster; both keep
# the line marks the error messages cite.
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineMap:
    explicit: set = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in explicit:
            raise PolicyFileError(
                str(loader.name), key_node.start_mark.line + 1, f"duplicate key '{key}'"
            )
        explicit.add(key)
    # A `<<: *anchor` merge comes first; keys written next to it override it.
    loader.flatten_mapping(node)
    result = LineMap()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_decimal(loader: _Loader, node: yaml.ScalarNode) -> Decimal:
    text = loader.construct_scalar(node).replace("_", "")
    if text.lower() in (".inf", "+.inf"):
        return Decimal("Infinity")
    if text.lower() == "-.inf":
        return Decimal("-Infinity")
    return Decimal(text)


def _construct_date(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        # 2023-02-29 looks like a date to YAML but is none: name the line, not a traceback.
        raise PolicyFileError(
            str(loader.name),
            node.start_mark.line + 1,
            f"not a date: {node.value} (quote it to keep it as text)",
        ) from None


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_date)


def load_yaml(path: Path) -> Any:
    """Load YAML with Decimal numbers and line-aware mappings."""
    text = path.read_text(encoding="utf-8")
    loader = _Loader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise PolicyFileError(str(path), line, f"invalid YAML: {getattr(e, 'problem', e)}") from None
    finally:
        loader.dispose()


def line_of(node: Any, key: str | None = None) -> int | None:
    if isinstance(node, LineMap):
        if key is not None and key in node.key_lines:
            return node.key_lines[key]
        return node.line
    return None
