"""Text quoted from input, file names or model files, made safe to print on a terminal.

A terminal acts on some characters instead of showing them: ESC starts CSI/OSC/DCS sequences
(``ESC ]0;title BEL`` sets the window title, ``ESC [2J`` clears the screen, ``ESC ]8;;URL ESC \\``
makes a live hyperlink), and so do the 8-bit C1 forms (U+009B is CSI, U+009D is OSC).  Unicode
bidi controls reorder what is shown, so that text can read as something it is not ("Trojan
Source", CVE-2021-42574).  ``printable`` escapes all of them visibly, the way Python writes them
in a string literal; seqattn's renderers then hand the result to rich as ``Text`` (never as
markup), so that ``[blink]`` or ``[/]`` in a word is shown as typed.

Only what reaches a terminal is escaped: pretty output and messages on stderr.  The data formats
(tsv, conllu, jsonl) keep the user's characters as given.
"""

from __future__ import annotations

# What is escaped, and why (each as ``\\xNN`` below U+0100, else ``\\uNNNN``, except \\t \\n \\r):
#   U+0000-U+001F  C0 controls: ESC starts every escape sequence; BEL ends OSC; CR, BS, LF move the
#                  cursor (tab and newline too: a quoted field stays one field on one line)
#   U+007F         DEL
#   U+0080-U+009F  C1 controls: 8-bit CSI (U+009B), OSC (U+009D), DCS (U+0090), NEL (U+0085)
#   U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069
#                  Unicode's Bidi_Control characters: embeddings, overrides, isolates and marks
#   U+2028, U+2029 line and paragraph separators (line breaks to some terminals and editors)
# A lone surrogate U+DC80-U+DCFF is how Python carries a byte of a file name that is not UTF-8
# (PEP 383); with the C locale's surrogateescape it would go out as that raw byte (0x9B: CSI), and
# with UTF-8 it cannot be written at all.  It is shown as the byte, ``\\xNN``; other lone
# surrogates as ``\\uNNNN``.
_CONTROLS = [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
             *range(0x2066, 0x206A), 0x2028, 0x2029]
_ESCAPES = {c: chr(c).encode("unicode_escape").decode("ascii") for c in _CONTROLS}
_ESCAPES.update({c: f"\\x{c - 0xDC00:02x}" for c in range(0xDC80, 0xDD00)})
_ESCAPES.update({c: f"\\u{c:04x}" for c in range(0xD800, 0xE000) if c not in _ESCAPES})


def printable(text: object) -> str:
    """``text`` (``str()`` of it) with every character that could drive or disguise a terminal
    escaped visibly: ``ESC`` becomes the four characters ``\\x1b``, U+202E ``\\u202e``, a newline
    ``\\n``, a non-UTF-8 byte of a file name ``\\xNN``.

    Everything else, letters of any script, emoji and backslashes included, is kept, so that
    ordinary text prints unchanged.  Idempotent: ``printable(printable(s)) == printable(s)``.
    The result is plain text: give it to rich as ``rich.text.Text``, not as markup.
    """
    return str(text).translate(_ESCAPES)
