"""Address syntax: our shortcut for plain local parts agrees with email-validator everywhere."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError
from email_validator.syntax import validate_email_local_part
from hypothesis import example, given, settings
from hypothesis import strategies as st

from runbook.addresses import AddressError, validate_address

_LOCAL = st.text(st.sampled_from("aZ09._-+!#$%&'*/=?^`{|}~\"(),:;<>[\\] @éü김👋\t"), min_size=1, max_size=20)


def _validator_accepts(local: str) -> bool:
    try:
        validate_email_local_part(local, allow_smtputf8=True)
    except EmailNotValidError:
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(_LOCAL)
@example("a..b")
@example(".a")
@example("a.")
@example("o'brien")
@example("김민준")
@example("a b")
def test_local_parts_are_judged_as_email_validator_judges_them(local: str) -> None:
    if local.startswith('"') or "@" in local:
        return  # quoted local parts are refused outright; an @ moves the split
    try:
        result = validate_address(f"{local}@Wingtiptoys.KR")
    except AddressError:
        accepted = False
    else:
        accepted = True
        assert result == f"{local}@wingtiptoys.kr"
    assert accepted == _validator_accepts(local)


@pytest.mark.parametrize("address", ["", "@x.kr", "a@", "a@b", "\"q\"@x.kr", "a@x..kr"])
def test_invalid_addresses_are_refused(address: str) -> None:
    with pytest.raises(AddressError):
        validate_address(address)
