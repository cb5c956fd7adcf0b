"""spotops (which does not import the Lambda code) spells the verification marker a second
time: the key and the ids it sends must be the ones the functions honour, or every function
would treat verify's event as a real one."""

from __future__ import annotations

from chalicelib.verification import ID_PATTERN, MARKER_KEY
from spotops.proof.verify import VERIFICATION_KEY, new_verification_id


def test_verify_sends_the_key_and_an_id_the_functions_honour() -> None:
    assert VERIFICATION_KEY == MARKER_KEY
    assert ID_PATTERN.fullmatch(new_verification_id())
