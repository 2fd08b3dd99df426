"""Container log lines as `kubectl logs` prints them, turned into `LogRecord`s one line at a time, and the reading of
large log files. The public surface is re-exported here; each module holds one part:

- `records`: a line (with its kubectl, stern or kubetail prefixes) into a `LogRecord` (`parse_line`, `iter_records`,
  `message_contains`);
- `formats`: the line shapes a body can have (JSON, logfmt, klog, zap console, Python logging, uvicorn, nginx
  error, zap console pasted with spaces), one reader each;
- `pieces`: the lines of a text handle in pieces of bounded length (`read_line_pieces`);
- `scan`: the few lines of a large log that may mention some needles (`lines_mentioning`, `Needles`).
"""

from __future__ import annotations

from mlops_trace.parsers.logs.pieces import read_line_pieces
from mlops_trace.parsers.logs.records import LogRecord, iter_records, message_contains, parse_line
from mlops_trace.parsers.logs.scan import Needles, lines_mentioning

__all__ = [
    "LogRecord",
    "Needles",
    "iter_records",
    "lines_mentioning",
    "message_contains",
    "parse_line",
    "read_line_pieces",
]
