"""What a call does, torch's or flashdrop's: its exception and its warnings, compared."""

import warnings


def outcome(fn, *args):
    """What a call does: its exception (type, message) or None, and its warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn(*args)
            error = None
        except Exception as exc:
            error = (type(exc), str(exc))
    return error, [(w.category, str(w.message)) for w in caught]


def assert_same_outcome(theirs, ours):
    """Same warnings, same exception type; our message is torch's, possibly followed by '; '
    and a hint of ours."""
    (their_error, their_warnings), (our_error, our_warnings) = theirs, ours
    assert our_warnings == their_warnings
    if their_error is None:
        assert our_error is None
        return
    assert our_error is not None, f"torch raised {their_error}, flashdrop did not"
    assert our_error[0] is their_error[0]
    assert our_error[1] == their_error[1] or our_error[1].startswith(their_error[1] + "; ")
