"""What a store's compare-and-set write says happened: one enum, compared by the
engines instead of strings. (A StrEnum: it is also the string the Lua returns.)"""

from __future__ import annotations

import enum


class Verdict(enum.StrEnum):
    OK = "ok"  # written
    TERMINAL = "terminal"  # written: the watch ended here, its event is in the outbox
    STALE = "stale"  # not written: another holder has the lease now
    GONE = "gone"  # not written: the record no longer exists
    FINISHED = "finished"  # not written: the watch had already ended
    BUSY = "busy"  # not written: still being worked on (a delivery not dead nor failed)
    HANDED_BACK = "handed_back"  # not tried: the process stops; its lease is given up
