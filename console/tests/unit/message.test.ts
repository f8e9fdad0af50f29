import { describe, expect, it } from "vitest";
import { counterLine, highlightUcs2, personalize, variablesOf } from "../../src/message";

describe("counterLine", () => {
  it("names characters, parts and encoding with singular and plural", () => {
    expect(counterLine({ characters: 1, parts: 1, encoding: "GSM-7" })).toBe(
      "1 character · 1 part · GSM-7",
    );
    expect(counterLine({ characters: 161, parts: 2, encoding: "UCS-2" })).toBe(
      "161 characters · 2 parts · UCS-2",
    );
  });
});

describe("highlightUcs2", () => {
  it("marks exactly the characters the API reported, keeping runs together", () => {
    expect(highlightUcs2("Hi 😀😀 ok ’", ["😀", "’"])).toEqual([
      { text: "Hi ", ucs2: false },
      { text: "😀😀", ucs2: true },
      { text: " ok ", ucs2: false },
      { text: "’", ucs2: true },
    ]);
  });

  it("keeps characters outside the BMP whole", () => {
    const pieces = highlightUcs2("a😀", ["😀"]);
    expect(pieces[1]).toEqual({ text: "😀", ucs2: true });
    expect(pieces.map((p) => p.text).join("")).toBe("a😀");
  });

  it("marks nothing for a plain GSM-7 text", () => {
    expect(highlightUcs2("Hello {}", [])).toEqual([{ text: "Hello {}", ucs2: false }]);
  });
});

describe("variablesOf", () => {
  it("lists variables in order of first appearance, once", () => {
    expect(variablesOf("{{firstName}} {{ code }} {{firstName}} {{attributes.city}}")).toEqual([
      "firstName",
      "code",
      "attributes.city",
    ]);
  });
});

describe("personalize", () => {
  const ann = {
    phone: "+33612345678",
    firstName: "Ann",
    lastName: "",
    attributes: { city: "Lyon" },
  };

  it("fills contact fields and attributes", () => {
    expect(personalize("Hi {{firstName}} from {{attributes.city}} ({{phone}})", ann)).toBe(
      "Hi Ann from Lyon (+33612345678)",
    );
  });

  it("uses params for other variables and for empty contact fields", () => {
    expect(
      personalize("{{lastName}}: code {{code}}", ann, { lastName: "friend", code: "BF20" }),
    ).toBe("friend: code BF20");
  });

  it("leaves unknown variables visible, and all of them without a contact", () => {
    expect(personalize("Hi {{firstName}} {{nope}}", null)).toBe("Hi {{firstName}} {{nope}}");
  });
});
