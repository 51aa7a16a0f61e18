"""The time format of the wire in tests: RFC 3339 UTC with milliseconds, as protocol.md gives it."""

from __future__ import annotations

import re

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
