"""Which upstream job ids the bridge accepts, however they arrive (the API, discovery):
an id sits in a URL path, so it must not be read as a path step there. Pure."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote


def usable_job_id(job_id: str) -> bool:
    """What WatchCreate accepts: for ids that arrive other ways (discovery)."""
    return bool(_JOB_ID.fullmatch(job_id)) and len(job_id) <= 512 and not has_dot_segment(job_id)


_JOB_ID = re.compile(r"[^\x00-\x1f\x7f/]+")


def has_dot_segment(job_id: str) -> bool:
    """Whether some server would read a path step (. or ..) in the id once it sits in a
    URL path: after decoding percent escapes as often as they nest (some servers decode
    twice), folding compatibility characters (full-width dots), splitting at
    backslashes (IIS), cutting path parameters at ; (Tomcat: `..;x` is `..`) and what a
    NUL, ? or # would end; a segment of dots alone (Windows drops trailing dots and
    spaces: `... ` is `..`)."""
    text = job_id
    for _ in range(_DECODINGS):
        text = unicodedata.normalize("NFKC", text)
        for segment in re.split(r"[/\\]", text):
            step = re.split(r"[;\x00?#]", segment, maxsplit=1)[0].strip()
            if step and not step.strip("."):
                return True
        decoded = unquote(text)
        if decoded == text:
            return False
        text = decoded
    return True  # escapes nested deeper than any server decodes: not a job id


_DECODINGS = 6
