"""Principals (``User:alice``) and Kafka's ``ssl.principal.mapping.rules``, pure.

A TLS client's principal comes from its verified certificate's subject in RFC 4514 form (``CN=alice,
O=logq``, most specific first, as Kafka prints it). The rules turn that name into a user name:

    RULE:^CN=([^,]+),O=logq$/$1/L, DEFAULT

Each rule is ``RULE:<pattern>/<replacement>/`` with an optional ``L`` (lower case) or ``U`` (upper case);
``/`` inside a pattern or replacement is written ``\\/``; ``$1`` names a group, as in Java. The first
rule whose pattern matches the whole name wins; ``DEFAULT`` keeps the name unchanged. A name that no
rule matches is refused (Kafka fails such a connection too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

ANONYMOUS: Final = "User:ANONYMOUS"

_RULE = re.compile(r"\s*(?:(DEFAULT)|RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU])?)\s*(?:,|$)")


def user_principal(name: str) -> str:
    return f"User:{name}"


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str] | None  # None: DEFAULT
    replacement: str = ""
    case: str = ""

    def apply(self, name: str) -> str | None:
        if self.pattern is None:
            return name
        match = self.pattern.fullmatch(name)
        if match is None:
            return None
        out = match.expand(self.replacement)
        return out.lower() if self.case == "L" else out.upper() if self.case == "U" else out


class PrincipalMapper:
    """``ssl.principal.mapping.rules``: ValueError for rules that do not parse."""

    def __init__(self, rules: str = "DEFAULT") -> None:
        self.text = rules
        self._rules: list[_Rule] = []
        pos = 0
        while pos < len(rules):
            match = _RULE.match(rules, pos)
            if match is None or match.end() == pos:
                raise ValueError(f"ssl.principal.mapping.rules: cannot parse {rules[pos:]!r}")
            pos = match.end()
            if match[1]:
                self._rules.append(_Rule(None))
                continue
            try:
                pattern = re.compile(_unescape(match[2]))
            except re.error as exc:
                raise ValueError(f"ssl.principal.mapping.rules: bad pattern {match[2]!r}: {exc}") from None
            replacement = re.sub(r"\$(\d+)", r"\\g<\1>", _unescape(match[3]))
            self._rules.append(_Rule(pattern, replacement, match[4] or ""))
        if not self._rules:
            raise ValueError("ssl.principal.mapping.rules is empty (DEFAULT keeps names as they are)")

    def map(self, distinguished_name: str) -> str | None:
        """The user name for a certificate subject, or None when no rule applies."""
        for rule in self._rules:
            try:
                name = rule.apply(distinguished_name)
            except (re.error, IndexError):  # a replacement naming a group the pattern lacks
                return None
            if name is not None:
                return name
        return None


def _unescape(text: str) -> str:
    return text.replace("\\/", "/")
