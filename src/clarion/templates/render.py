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
_NO_CONTACT: Mapping[str, Any] = {}
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
    if name in CONTACT_FIELDS:

        def contact_field(contact: Contact, params: Params) -> str:
            value = None if contact is None else contact.get(name)
            if value is None or value == "":
                return _text(params.get(name))
            return _text(value)

        return contact_field
    if name.startswith(ATTRIBUTE_PREFIX):
        attribute = name[len(ATTRIBUTE_PREFIX) :]

        def contact_attribute(contact: Contact, params: Params) -> str:
            attributes = None if contact is None else contact.get("attributes")
            value = attributes.get(attribute) if isinstance(attributes, Mapping) else None
            if value is None or value == "":
                fallback = params.get(name)
                return _text(params.get(attribute) if fallback is None else fallback)
            return _text(value)

        return contact_attribute

    def parameter(contact: Contact, params: Params) -> str:
        return _text(params.get(name))

    return parameter


def _field_value(value: Any, params: Params, name: str) -> str:
    if value is None or value == "":
        return _text(params.get(name))
    return _text(value)


def _attribute_value(value: Any, params: Params, name: str, attribute: str) -> str:
    if value is None or value == "":
        fallback = params.get(name)
        return _text(params.get(attribute) if fallback is None else fallback)
    return _text(value)


def _attributes(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _generate(literals: list[str], names: list[str]) -> Callable[[Contact, Params], str]:
    """Build a render function specialized to one template.

    Rendering runs once per recipient (a personalized estimate renders a million texts), so
    instead of looping over parts and calling one getter per variable, the template becomes
    straight-line code: one dict lookup per variable and a single join. Every piece of the
    template enters the generated source only through repr() (a string literal), so no
    template text can become code.
    """
    lines = ["def render(c, p):"]
    if any(_is_contact_variable(n) for n in names):
        lines.append("    if c is None: c = _NO_CONTACT")
    if any(n.startswith(ATTRIBUTE_PREFIX) for n in names):
        lines.append("    a = c.get('attributes')")
        lines.append("    if a.__class__ is not dict: a = _attributes(a)")
    slot: dict[str, str] = {}
    for name in dict.fromkeys(names):
        var = f"v{len(slot)}"
        slot[name] = var
        if name in CONTACT_FIELDS:
            lines.append(f"    {var} = c.get({name!r})")
            lines.append(f"    if {var}.__class__ is not str or not {var}:")
            lines.append(f"        {var} = _field_value({var}, p, {name!r})")
        elif name.startswith(ATTRIBUTE_PREFIX):
            attribute = name[len(ATTRIBUTE_PREFIX) :]
            lines.append(f"    {var} = a.get({attribute!r})")
            lines.append(f"    if {var}.__class__ is not str or not {var}:")
            lines.append(f"        {var} = _attribute_value({var}, p, {name!r}, {attribute!r})")
        else:
            lines.append(f"    {var} = p.get({name!r})")
            lines.append(f"    if {var}.__class__ is not str: {var} = _text({var})")
    pieces = [repr(literals[0])]
    for i, name in enumerate(names, 1):
        pieces.append(slot[name])
        pieces.append(repr(literals[i]))
    lines.append(f"    return ''.join(({', '.join(p for p in pieces if p != repr(''))},))")
    namespace: dict[str, Any] = {
        "_field_value": _field_value,
        "_attribute_value": _attribute_value,
        "_attributes": _attributes,
        "_text": _text,
        "_NO_CONTACT": _NO_CONTACT,
    }
    exec(compile("\n".join(lines), "<template>", "exec"), namespace)
    render: Callable[[Contact, Params], str] = namespace["render"]
    return render


class Renderer:
    """A template parsed once, rendered per recipient.

    `render` is replaced per instance by code generated for the template (no __slots__, so
    the instance attribute shadows the method and a call skips the bound-method step).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        literals: list[str] = []
        names: list[str] = []
        last = 0
        for match in VARIABLE_RE.finditer(text):
            literals.append(text[last : match.start()])
            names.append(match.group(1))
            last = match.end()
        literals.append(text[last:])
        self.variables: list[str] = list(dict.fromkeys(names))
        self._variable_getters = [_getter(name) for name in self.variables]
        self.personalized: bool = any(_is_contact_variable(v) for v in self.variables)
        if names:
            self.render = _generate(literals, names)  # type: ignore[method-assign,assignment]

    def render(self, contact: Contact, params: Params) -> str:
        """The text for one recipient. `contact` holds firstName, lastName, phone and
        attributes (a mapping); see the module docstring for fallbacks."""
        return self.text

    def parameters(self, contact: Contact, params: Params) -> list[str]:
        """WhatsApp body parameters: the value of each variable, in order of first
        appearance."""
        return [get(contact, params) for get in self._variable_getters]

    def __repr__(self) -> str:
        return f"Renderer({self.text!r})"


def compile_template(text: str) -> Renderer:
    """Parse `text` once; `Renderer.render` then fills it for each recipient."""
    return Renderer(text)
