# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Private to meetops.jitsi: SASLprep (RFC 4013) as Prosody applies it to names and passwords."""

from __future__ import annotations

import stringprep
import unicodedata

PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21,
    stringprep.in_table_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


def saslprep(value: str, what: str = "it") -> str:
    """The prepared string (unassigned code points allowed, as in Prosody).

    Raises ValueError saying which rule `value` breaks, naming it `what`; Prosody refuses such strings too.
    """
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char for char in value if not stringprep.in_table_b1(char)
    )
    text = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    for char in text:
        if any(table(char) for table in PROHIBITED):
            raise ValueError(f"{what} contains the prohibited character U+{ord(char):04X}")
    if any(stringprep.in_table_d1(char) for char in text):
        if any(stringprep.in_table_d2(char) for char in text):
            raise ValueError(f"{what} mixes right-to-left and left-to-right characters")
        if not (stringprep.in_table_d1(text[0]) and stringprep.in_table_d1(text[-1])):
            raise ValueError(
                f"{what} is right-to-left text that does not start and end with such a character"
            )
    return text
