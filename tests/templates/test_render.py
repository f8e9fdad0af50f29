import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.templates.render import (
    CONTACT_FIELDS,
    compile_template,
    is_personalized,
    unknown_variables,
    variables_of,
)

CONTACT = {
    "firstName": "Anne",
    "lastName": "Martin",
    "phone": "+33612345678",
    "attributes": {"city": "Lyon", "points": 120, "vip": True, "ratio": 0.5, "empty": ""},
}


class TestVariables:
    def test_order_of_first_appearance_without_repeats(self) -> None:
        text = "{{lastName}} {{ firstName }} {{lastName}} {{attributes.city}} {{code}} {{code}}"
        assert variables_of(text) == ["lastName", "firstName", "attributes.city", "code"]

    def test_spaces_inside_braces(self) -> None:
        assert variables_of("{{firstName}}{{ firstName}}{{firstName }}{{  firstName\t}}") == [
            "firstName"
        ]

    @pytest.mark.parametrize(
        "text",
        [
            "{{}}",
            "{{ }}",
            "{{a b}}",
            "{firstName}",
            "{{first.name}}",
            "{{attributes.}}",
            "{{attributes. x}}",
            "{{attributes.{x}}}",
            "{{ firstName }",
        ],
    )
    def test_other_braces_are_no_variables(self, text: str) -> None:
        assert variables_of(text) == []
        assert compile_template(text).render(CONTACT, {}) == text

    def test_malformed_placeholders_are_unknown(self) -> None:
        text = "{{}} {{a b}} {{attributes.}} {{code}} {{a b}} {{ x\ny }} {x} {{{code}}} {{firstName"
        assert unknown_variables(text, {}) == [
            "code",
            "{{}}",
            "{{a b}}",
            "{{attributes.}}",
            "{{ x\ny }}",
        ]
        assert unknown_variables(text, {"code": "1"}) == [
            "{{}}",
            "{{a b}}",
            "{{attributes.}}",
            "{{ x\ny }}",
        ]
        assert (
            unknown_variables("{{ attributes.date of birth }} {x} {{{code}}}", {"code": "c"}) == []
        )

    def test_attribute_names_may_hold_spaces(self) -> None:
        text = "{{ attributes.date of birth }} {{attributes.Zip Code}}"
        assert variables_of(text) == ["attributes.date of birth", "attributes.Zip Code"]
        contact = {"attributes": {"date of birth": "1 May", "Zip Code": "75001"}}
        assert compile_template(text).render(contact, {}) == "1 May 75001"

    def test_unknown_variables(self) -> None:
        text = "{{firstName}} {{attributes.anything}} {{code}} {{url}} {{FirstName}}"
        assert unknown_variables(text, {"code": "X"}) == ["url", "FirstName"]
        assert unknown_variables(text, {"code": "X", "url": "u", "FirstName": "F"}) == []

    def test_is_personalized(self) -> None:
        for field in CONTACT_FIELDS:
            assert is_personalized(f"Hi {{{{{field}}}}}")
        assert is_personalized("{{ attributes.city }}")
        assert not is_personalized("Code {{code}}")
        assert not is_personalized("No variables")
        assert compile_template("{{phone}}").personalized
        assert not compile_template("{{code}}").personalized


class TestRender:
    def test_contact_fields_and_params(self) -> None:
        r = compile_template(
            "Hi {{firstName}} {{lastName}} ({{phone}}), {{attributes.city}}: {{code}}"
        )
        assert r.render(CONTACT, {"code": "BF20"}) == ("Hi Anne Martin (+33612345678), Lyon: BF20")

    def test_empty_contact_field_takes_param_fallback(self) -> None:
        r = compile_template("Hi {{firstName}}{{lastName}}!")
        params = {"firstName": "friend"}
        assert r.render({"firstName": "", "phone": "+1"}, params) == "Hi friend!"
        assert r.render({"firstName": None}, params) == "Hi friend!"
        assert r.render({}, params) == "Hi friend!"
        assert r.render({"firstName": "Bo"}, params) == "Hi Bo!"

    def test_attribute_fallbacks(self) -> None:
        r = compile_template("[{{attributes.city}}]")
        assert r.render(CONTACT, {"attributes.city": "X", "city": "Y"}) == "[Lyon]"
        no_city: dict[str, Any] = {"attributes": {}}
        assert r.render(no_city, {"attributes.city": "X", "city": "Y"}) == "[X]"
        assert r.render(no_city, {"city": "Y"}) == "[Y]"
        assert r.render(no_city, {}) == "[]"
        assert r.render({"attributes": None}, {"city": "Y"}) == "[Y]"
        assert r.render({"attributes": "junk"}, {}) == "[]"
        assert compile_template("{{attributes.empty}}").render(CONTACT, {"empty": "E"}) == "E"

    def test_non_string_attributes(self) -> None:
        r = compile_template("{{attributes.points}} {{attributes.vip}} {{attributes.ratio}}")
        assert r.render(CONTACT, {}) == "120 true 0.5"
        assert compile_template("{{attributes.x}}").render({"attributes": {"x": [1, "a"]}}, {}) == (
            '[1,"a"]'
        )

    def test_no_contact_reads_as_empty_fields(self) -> None:
        r = compile_template("Hi {{firstName}} {{attributes.city}} {{code}}")
        assert r.render(None, {"firstName": "friend", "code": "X"}) == "Hi friend  X"
        assert r.parameters(None, {"city": "Lyon"}) == ["", "Lyon", ""]
        assert compile_template("plain").render(None, {}) == "plain"

    def test_missing_param_is_empty(self) -> None:
        assert compile_template("a{{code}}b").render(CONTACT, {}) == "ab"

    def test_template_text_is_never_code(self) -> None:
        text = "'''\"\"\" {{code}} \\n {x} %s ') + __import__('os').getcwd() + (' \\"
        assert compile_template(text).render(CONTACT, {"code": "C"}) == text.replace(
            "{{code}}", "C"
        )

    def test_values_are_not_re_expanded(self) -> None:
        r = compile_template("{{firstName}} {{code}}")
        assert r.render({"firstName": "{{code}}"}, {"code": "{{firstName}}"}) == (
            "{{code}} {{firstName}}"
        )

    def test_no_variables_returns_the_text(self) -> None:
        r = compile_template("Plain text")
        assert r.variables == []
        assert r.render(CONTACT, {}) == "Plain text"

    def test_parameters_in_order(self) -> None:
        r = compile_template("{{code}} {{firstName}} {{code}} {{attributes.city}}")
        assert r.variables == ["code", "firstName", "attributes.city"]
        assert r.parameters(CONTACT, {"code": "X"}) == ["X", "Anne", "Lyon"]
        assert r.parameters({}, {"firstName": "friend"}) == ["", "friend", ""]


def reference_render(text: str, contact: dict[str, Any], params: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name in CONTACT_FIELDS:
            v = contact.get(name)
            return v if v else params.get(name, "")
        if name.startswith("attributes.") and name[11:] and not name[11].isspace():
            v = (contact.get("attributes") or {}).get(name[11:])
            if v:
                return str(v)
            return params.get(name, params.get(name[11:], ""))
        if re.fullmatch(r"[\w-]+", name):
            return params.get(name, "")
        return match.group(0)

    return re.sub(r"\{\{([^{}]*)\}\}", value, text)


names = st.sampled_from(
    [
        *("firstName", "lastName", "phone", "code", "attributes.city", "attributes.zip", "x-1"),
        *("attributes.date of birth", "attributes. x", "attributes.", "a b", ""),
    ]
)
pieces = st.one_of(
    st.text(alphabet="ab {}.\n€😀", max_size=8),
    st.builds(
        lambda n, s1, s2: "{{" + s1 + n + s2 + "}}",
        names,
        st.sampled_from(["", " "]),
        st.sampled_from(["", " "]),
    ),
)
words = st.text(alphabet="xyz{}é", max_size=5)


class TestRenderProperty:
    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(pieces, max_size=12).map("".join),
        st.fixed_dictionaries(
            {},
            optional={
                "firstName": words,
                "lastName": words,
                "phone": words,
                "attributes": st.dictionaries(
                    st.sampled_from(["city", "zip", "date of birth"]), words
                ),
            },
        ),
        st.dictionaries(
            st.sampled_from(["firstName", "code", "attributes.city", "zip", "x-1"]), words
        ),
    )
    def test_matches_reference(
        self, text: str, contact: dict[str, Any], params: dict[str, str]
    ) -> None:
        assert compile_template(text).render(contact, params) == reference_render(
            text, contact, params
        )
