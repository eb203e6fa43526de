"""What the CLI prints of text from upstreams and receivers: shown, never acted on by
the terminal."""

from __future__ import annotations

import io

from bridge.cli import output as out

CLEAR_AND_TITLE = "\x1b[2J\x1b]0;owned-title\x07COMPLETED"
CLIPBOARD = "oops\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGV8c2g=\x07 \x9b31m"


def _shown(text: str) -> None:
    assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in text), text


def test_a_table_shows_escape_sequences_as_text() -> None:
    """watch ls: a generic upstream's status that would clear the screen and set the
    window title is printed as visible escapes."""
    buf = io.StringIO()
    out.table([{"id": "w_1", "status": CLEAR_AND_TITLE}], ["id", "status"], buf)
    _shown(buf.getvalue())
    assert "\\x1b[2J\\x1b]0;owned-title\\x07COMPLETED" in buf.getvalue()


def test_a_record_shows_escape_sequences_as_text() -> None:
    """deliveries show: a receiver's 500 body with an OSC 52 clipboard write, in values,
    keys and nested objects alike."""
    buf = io.StringIO()
    out.record(
        {"last_error": CLIPBOARD, "attempts": [{"error": CLIPBOARD, CLIPBOARD: 1}],
         "x\x1b": {"y": CLIPBOARD}},
        buf,
    )  # fmt: skip
    out.table([{"x": {CLEAR_AND_TITLE: 1}}], ["x"], buf)
    _shown(buf.getvalue())
    assert "\\x1b]52;c;" in buf.getvalue() and "\\x9b31m" in buf.getvalue()


def test_bidirectional_overrides_are_shown() -> None:
    """Text that would reorder what the reader sees is shown as escapes."""
    assert out.printable("abc\u202edcba") == "abc\\u202edcba"
    assert out.printable("plain é text ✅") == "plain é text ✅"
