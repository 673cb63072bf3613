""".env.example and the README's settings table, written from the settings' defaults and descriptions by
`newsqa settings`, so a default is stated once (tests/test_settings.py fails when they are stale)."""

import textwrap
from collections.abc import Iterator

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from newsqa.settings import Settings, allowed, env_name

README_START = "<!-- settings: written by `newsqa settings --markdown`; edit newsqa/settings.py instead -->"
README_END = "<!-- /settings -->"


def env_example() -> str:
    lines = ["# newsqa settings: every variable is optional; the defaults run fully offline on this machine.",
             "# Written by `newsqa settings --env-example > .env.example`; edit newsqa/settings.py instead."]
    for section, fields in _sections():
        lines += ["", f"# --- {section} ---"]
        for name, field in fields:
            bounds = allowed(field)
            text = _description(name, field) + (f" Allowed: {bounds}." if bounds else "")
            lines += [f"# {line}" for line in textwrap.wrap(text, 113)]
            lines.append(f"{env_name(name)}={_default(field)}")
    return "\n".join(lines) + "\n"


def markdown() -> str:
    lines = [README_START]
    for section, fields in _sections():
        lines += ["", f"**{section}**", "", "| Variable | Default | Allowed | Meaning |", "|---|---|---|---|"]
        for name, field in fields:
            default = _default(field)
            cells = [f"`{env_name(name)}`", f"`{default}`" if default else "", allowed(field),
                     _description(name, field)]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join([*lines, "", README_END]) + "\n"


def _sections() -> Iterator[tuple[str, list[tuple[str, FieldInfo]]]]:
    """The settings in the class's order, grouped where a field opens a section."""
    section = ""
    fields: list[tuple[str, FieldInfo]] = []
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "section" in extra:
            if fields:
                yield section, fields
            section, fields = str(extra["section"]), []
        fields.append((name, field))
    yield section, fields


def _description(name: str, field: FieldInfo) -> str:
    assert field.description, f"settings.{name} has no description: .env.example and the README need one"
    return field.description


def _default(field: FieldInfo) -> str:
    value = field.default
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)
