"""Loading the policy file: validated once at start, with the bad key named."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from iasu.errors import OperatorError
from rules.policy import Policy

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policy" / "default.yaml"


class _KeyTwice(yaml.constructor.ConstructorError):
    """A key given twice in one mapping of the policy file."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping.

    PyYAML keeps the last of them: a section added again to change one value would silently replace the
    whole earlier section, and the policy would decide on defaults nobody chose.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be given again below
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _KeyTwice(None, None, f"key {key!r} given twice in one section", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_policy(path: Path | None) -> Policy:
    """Read and validate a policy file (the shipped default when path is None)."""
    source = path or DEFAULT_POLICY
    try:
        data = yaml.load(source.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except OSError as exc:
        raise OperatorError(f"policy file {source} cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:  # saved in a Windows code page, say
        raise OperatorError(f"policy file {source} is not UTF-8 (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        # The problem's own words only when they are ours (a key named twice): PyYAML's may quote a value.
        said = f": {exc.problem}" if isinstance(exc, _KeyTwice) else ""
        raise OperatorError(f"policy file {source} is not valid YAML{where}{said}") from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise OperatorError(f"policy file {source} is invalid: {problems}") from None


@lru_cache(maxsize=1)
def get_policy() -> Policy:
    """The process's policy, from IASU_POLICY_FILE or the shipped default."""
    from iasu.settings import get_settings

    return load_policy(get_settings().policy_file)
