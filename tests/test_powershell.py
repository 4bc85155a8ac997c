"""The quoting module: every string round-trips through PowerShell's single-quote rule."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from runbook.powershell import (
    SINGLE_QUOTES,
    PowerShellValueError,
    PsCode,
    RecordLayout,
    decode_single_quoted,
    ps_array,
    ps_bool,
    ps_datetime,
    ps_hashtable,
    ps_int,
    ps_str,
    ps_value,
)

from .conftest import nodes_of, syntax_errors

HOSTILE = [
    "x'; Remove-Mailbox -Identity * ; '",
    "Renée ’Dollar’",
    "‘‚‛’'",
    "$(Remove-Mailbox -Identity *)",
    "`$env:SECRET`n",
    "# not a comment",
    "<# not a block comment #>",
    "\"double\" “smart” „low“",
    "line one\nline two\r\nline three",
    "김민준 🙂",
    "@{a=1}; @(1,2)",
    "'",
    "''",
    "",
]

# Text as admins' directories hold it, weighted towards the characters that matter here.
text = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(SINGLE_QUOTES) + list("\"“”„$`#<>(){}@;|&\n\r\t ") + ["김", "🙂", "é"]),
        st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    ),
    max_size=40,
)


@given(text)
@example("x'; Remove-Mailbox -Identity * ; '")
@example("Renée ’Dollar’")
@settings(max_examples=400)
def test_any_string_round_trips_under_the_single_quote_rule(value: str) -> None:
    literal = ps_str(value)
    assert decode_single_quoted(literal) == value


@given(text)
@settings(max_examples=300, deadline=None)
def test_any_string_parses_as_exactly_one_string_literal(value: str) -> None:
    source = f"$x = {ps_str(value)}\n".encode()
    assert syntax_errors(source) == []
    literals = nodes_of(source, "string_literal")
    assert len(literals) == 1
    assert literals[0].text.decode() == ps_str(value)
    # Nothing but the assignment: no command, no sub-expression, no variable beyond $x.
    assert nodes_of(source, "command") == []
    assert [v.text for v in nodes_of(source, "variable")] == [b"$x"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_strings_stay_data(value: str) -> None:
    source = f"Write-Output -InputObject {ps_str(value)}\n".encode()
    assert syntax_errors(source) == []
    names = [n.text for n in nodes_of(source, "command_name")]
    assert names == [b"Write-Output"]
    assert decode_single_quoted(nodes_of(source, "string_literal")[0].text.decode()) == value


def test_each_of_the_five_quotes_is_doubled() -> None:
    assert ps_str("a'b") == "'a''b'"
    for quote in "\u2018\u2019\u201a\u201b":
        assert ps_str(f"a{quote}b") == f"'a{quote}{quote}b'"


def test_nul_is_refused() -> None:
    with pytest.raises(PowerShellValueError, match="NUL"):
        ps_str("a\x00b")


def test_decoder_rejects_text_after_the_closing_quote() -> None:
    with pytest.raises(PowerShellValueError):
        decode_single_quoted("'a'b'")


def test_scalars() -> None:
    assert ps_bool(True) == "$true" and ps_bool(False) == "$false"
    assert ps_value(None) == "$null"
    assert ps_int(5) == "5" and ps_int(-3) == "(-3)"
    with pytest.raises(PowerShellValueError):
        ps_bool("true")
    with pytest.raises(PowerShellValueError):
        ps_int(True)
    with pytest.raises(PowerShellValueError):
        ps_str(None)


def test_collections() -> None:
    assert ps_array(["a", "b'"]) == "@('a', 'b''')"
    assert ps_array([]) == "@()"
    assert ps_hashtable({"Name": "x", "On": True, "N": 2, "Nothing": None, "L": ["q"]}) == (
        "[ordered]@{'Name' = 'x'; 'On' = $true; 'N' = 2; 'Nothing' = $null; 'L' = @('q')}"
    )
    assert ps_value(uuid.UUID(int=1)) == "'00000000-0000-0000-0000-000000000001'"
    with pytest.raises(PowerShellValueError):
        ps_array("abc")
    with pytest.raises(PowerShellValueError):
        ps_value(object())


def test_datetime_is_culture_independent_utc() -> None:
    value = dt.datetime(2026, 12, 21, 7, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    code = ps_datetime(value)
    assert "'2026-12-20T22:00:00Z'" in code and "InvariantCulture" in code
    assert syntax_errors(f"$d = {code}\n".encode()) == []
    with pytest.raises(PowerShellValueError):
        ps_datetime(dt.datetime(2026, 1, 1))


def test_results_are_marked_as_code() -> None:
    assert isinstance(ps_str("x"), PsCode)
    assert isinstance(ps_hashtable({}), PsCode)


def test_records_take_only_quoted_values() -> None:
    from runbook.powershell import ps_records

    block = ps_records(("Mailbox", "MappedTo"), [(ps_str("a'b@x.kr"), ps_str("c@y.kr"))])
    assert block == "    [ordered]@{'Mailbox' = 'a''b@x.kr'; 'MappedTo' = 'c@y.kr'}\n"
    assert block == "    " + ps_hashtable({"Mailbox": "a'b@x.kr", "MappedTo": "c@y.kr"}) + "\n"
    with pytest.raises(PowerShellValueError):
        ps_records(("Mailbox",), [("a@x.kr",)])  # type: ignore[list-item]
    with pytest.raises(PowerShellValueError):
        ps_records(("Mailbox", "MappedTo"), [(ps_str("a"),)])


_TEXT = st.text(st.characters(blacklist_characters="\x00"), max_size=12)
_RECORD_VALUE = st.one_of(_TEXT, st.none(), st.integers(-5, 10**9), st.booleans(),
                          st.lists(_TEXT, max_size=3), st.lists(_TEXT, max_size=3).map(tuple))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_TEXT.filter(bool), _RECORD_VALUE), min_size=1, max_size=6,
                unique_by=lambda kv: kv[0].casefold()))
def test_record_layout_writes_what_ps_hashtable_writes(items: list[tuple[str, object]]) -> None:
    layout = RecordLayout([key for key, _ in items])
    assert layout.format([value for _, value in items]) == ps_hashtable(dict(items))


@pytest.mark.parametrize("text", HOSTILE)
def test_record_layout_quotes_hostile_values(text: str) -> None:
    record = RecordLayout(["Name", "Addresses"]).format([text, (text, "b@x.kr")])
    assert record == ps_hashtable({"Name": text, "Addresses": [text, "b@x.kr"]})
    assert syntax_errors(f"$r = {record}\n".encode()) == []


@pytest.mark.parametrize("value", [
    PsCode("$null"), [PsCode("$x"), "a'b"], ("a", 1), -3, True, uuid.UUID(int=7), [], (), None, 0, "‘’",
    dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc),
])
def test_record_layout_matches_ps_hashtable_for_every_kind_of_value(value: object) -> None:
    """Values the record's own quoting does not take (code, bools, dates, mixed lists) go through
    ps_hashtable, which leaves PsCode as it is; the rest must come out the same."""
    layout = RecordLayout(["Key's", "Value", "Name"])
    for _ in range(2):  # the second time, from the pieces kept for these types
        assert layout.format(["k", value, "O’Brien"]) == ps_hashtable({"Key's": "k", "Value": value, "Name": "O’Brien"})


def test_record_layout_refuses_a_wrong_number_of_values_and_nul() -> None:
    layout = RecordLayout(["A", "B"])
    with pytest.raises(PowerShellValueError):
        layout.format(["only one"])
    with pytest.raises(PowerShellValueError):
        layout.format(["a\x00", "b"])
    with pytest.raises(PowerShellValueError):
        layout.format(["a", ("b", "c\x00")])
    with pytest.raises(PowerShellValueError):
        layout.format(["a", "b", "c"])
    with pytest.raises(PowerShellValueError):
        RecordLayout(["A\x00"])
    with pytest.raises(PowerShellValueError):
        RecordLayout(["Name", "name"])


@pytest.mark.parametrize("text", [*HOSTILE, "100%s %d %%", "%(x)s"])
def test_records_lines_equal_hashtables_whatever_the_text(text: str) -> None:
    from runbook.powershell import ps_records

    rows = [(ps_str(text), ps_str("b@x.kr")), (ps_str("c"), ps_str(text))]
    block = ps_records(("Key %s", "Two"), rows)
    assert block == "".join(f"    {ps_hashtable({'Key %s': a, 'Two': b})}\n"
                            for a, b in ((text, "b@x.kr"), ("c", text)))
    assert ps_records(("A",), []) == ""


def test_ps_strs_quotes_each_string_as_ps_str_does() -> None:
    from runbook.powershell import ps_strs

    quoted = ps_strs(HOSTILE)
    assert quoted == [ps_str(text) for text in HOSTILE]
    assert all(type(q) is PsCode for q in quoted)
    with pytest.raises(PowerShellValueError):
        ps_strs(["a", 1])  # type: ignore[list-item]
    with pytest.raises(PowerShellValueError):
        ps_strs(["a\x00b"])
