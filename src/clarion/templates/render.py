"""Message variables: ``{{firstName}}``, ``{{ attributes.city }}``, ``{{code}}``.

A variable is ``{{`` NAME ``}}`` with optional spaces inside the braces. NAME is letters,
digits, ``_`` and ``-``; or ``attributes.`` followed by an attribute name, which may be any
text without braces (CSV headers such as ``date of birth`` become attribute names), trimmed.
Anything else between double braces (``{{}}``, ``{{ first name }}``, ``{{attributes.}}``) is
a malformed variable: `unknown_variables` reports it, so a campaign using it is rejected
rather than sent with the braces (a renderer leaves it as it is).

Values, for one recipient:

- ``firstName``, ``lastName``, ``phone``: the contact's field; when it is empty or missing,
  ``params[name]`` is the fallback, else "".
- ``attributes.NAME``: the contact's attribute NAME; when it is empty or missing,
  ``params["attributes.NAME"]``, then ``params["NAME"]``, else "".
- any other variable: ``params[name]`` (campaign `templateParams`), else "".

Numbers are rendered as JSON would print them, booleans as ``true``/``false``.
"""

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

CONTACT_FIELDS = ("firstName", "lastName", "phone")
ATTRIBUTE_PREFIX = "attributes."

PLACEHOLDER_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
VARIABLE_RE = re.compile(r"\{\{\s*(attributes\.[^{}\s](?:[^{}]*[^{}\s])?|[\w\-]+)\s*\}\}")

Contact = Mapping[str, Any] | None
"""{"firstName", "lastName", "phone", "attributes": {...}}; None reads as a contact with no
fields (a text without contact variables needs no contact row)."""
Params = Mapping[str, str]


def variables_of(text: str) -> list[str]:
    """The variables of `text`, in order of first appearance, without repeats."""
    return list(dict.fromkeys(VARIABLE_RE.findall(text)))


def _is_contact_variable(name: str) -> bool:
    return name in CONTACT_FIELDS or name.startswith(ATTRIBUTE_PREFIX)


def malformed_variables(text: str) -> list[str]:
    """Double-brace placeholders that are not variables (``{{}}``, ``{{a b}}``), as written,
    without repeats."""
    if "{{" not in text:
        return []
    # Blank out the real variables first, so "{{{code}}}" is a variable in single braces.
    rest = VARIABLE_RE.sub("\x00", text)
    return list(dict.fromkeys("{{" + inner + "}}" for inner in PLACEHOLDER_RE.findall(rest)))


def unknown_variables(text: str, params: Params) -> list[str]:
    """What nothing can fill: variables that are neither a contact field, an attribute, nor a
    key of `params`, then malformed placeholders (``{{a b}}``) as written."""
    unknown = [v for v in variables_of(text) if not _is_contact_variable(v) and v not in params]
    return unknown + malformed_variables(text)


def is_personalized(text: str) -> bool:
    """Whether the rendered text depends on the contact (a contact field or an attribute)."""
    return any(_is_contact_variable(v) for v in variables_of(text))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


Getter = Callable[[Contact, Params], str]


def _getter(name: str) -> Getter:
    """The value of variable `name` for one recipient. A non-empty string (the common case)
    is returned as it is; anything else goes through the fallbacks and `_text`."""
    if name in CONTACT_FIELDS:

        def contact_field(contact: Contact, params: Params) -> str:
            value = None if contact is None else contact.get(name)
            if value.__class__ is str and value:
                return value  # type: ignore[no-any-return]
            if value is None or value == "":
                return _text(params.get(name))
            return _text(value)

        return contact_field
    if name.startswith(ATTRIBUTE_PREFIX):
        attribute = name[len(ATTRIBUTE_PREFIX) :]

        def contact_attribute(contact: Contact, params: Params) -> str:
            attributes = None if contact is None else contact.get("attributes")
            value = attributes.get(attribute) if isinstance(attributes, Mapping) else None
            if value.__class__ is str and value:
                return value  # type: ignore[no-any-return]
            if value is None or value == "":
                fallback = params.get(name)
                return _text(params.get(attribute) if fallback is None else fallback)
            return _text(value)

        return contact_attribute

    def parameter(contact: Contact, params: Params) -> str:
        value = params.get(name)
        return value if value.__class__ is str else _text(value)  # type: ignore[return-value]

    return parameter


_NOTHING: Mapping[str, Any] = {}
_CONTACT, _ATTRIBUTES, _PARAMS = 0, 1, 2


class Renderer:
    """A template parsed once into literal and variable parts, rendered per recipient.

    Rendering runs once per recipient (a personalized estimate renders a million texts), so
    the parts are kept as a list of literals with a slot for each variable: a render copies
    that list, fills the slots and joins it. A slot is filled by one dict lookup when the
    value is a non-empty string (nearly always); anything else takes the variable's getter,
    which applies the fallbacks of the module docstring.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        parts: list[str] = []
        slots: list[tuple[int, int, str, Getter]] = []
        getters: dict[str, Getter] = {}
        last = 0
        for match in VARIABLE_RE.finditer(text):
            parts.append(text[last : match.start()])
            name = match.group(1)
            if name not in getters:
                getters[name] = _getter(name)
            if name in CONTACT_FIELDS:
                source, key = _CONTACT, name
            elif name.startswith(ATTRIBUTE_PREFIX):
                source, key = _ATTRIBUTES, name[len(ATTRIBUTE_PREFIX) :]
            else:
                source, key = _PARAMS, name
            slots.append((len(parts), source, key, getters[name]))
            parts.append("")  # the variable's slot
            last = match.end()
        parts.append(text[last:])
        self.variables: list[str] = list(getters)
        self.personalized: bool = any(_is_contact_variable(v) for v in self.variables)
        self._parts = parts
        self._slots = slots
        self._variable_getters = list(getters.values())

    def render(self, contact: Contact, params: Params) -> str:
        """The text for one recipient. `contact` holds firstName, lastName, phone and
        attributes (a mapping); see the module docstring for fallbacks."""
        if not self._slots:
            return self.text
        fields = _NOTHING if contact is None else contact
        attributes = fields.get("attributes")
        if attributes.__class__ is not dict:
            attributes = _NOTHING  # the getter reads other mappings
        sources = (fields, attributes, params)
        out = self._parts.copy()
        for index, source, key, get in self._slots:
            value = sources[source].get(key)
            out[index] = value if value.__class__ is str and value else get(contact, params)
        return "".join(out)

    def parameters(self, contact: Contact, params: Params) -> list[str]:
        """WhatsApp body parameters: the value of each variable, in order of first
        appearance."""
        return [get(contact, params) for get in self._variable_getters]

    def __repr__(self) -> str:
        return f"Renderer({self.text!r})"


def compile_template(text: str) -> Renderer:
    """Parse `text` once; `Renderer.render` then fills it for each recipient."""
    return Renderer(text)
