"""The one exception for user mistakes in the frontend, located in the user's source.

A `TraceError` reads like a compiler diagnostic: the user's file, line and column, the
source line, and a caret under the expression that went wrong:

```
/home/me/model.py:12:8: a traced value has no Python truth value ...
        if score > 0:
           ^^^^^^^^^
```

While a `score_mod` or `mask_mod` is traced, the offending expression is found from the
innermost user frame: its current bytecode instruction has exact source columns
(`co_positions`, Python 3.11+). Code outside tracing passes an explicit location.
"""

from __future__ import annotations

import linecache
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, FrameType

# As spelled in `co_filename` of attnc's own code, so no resolving of symlinks.
_ATTNC_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class SourceLocation:
    """A span of user source; columns are 0-based character offsets, `None` if unknown."""

    filename: str
    lineno: int
    col: int | None = None
    end_lineno: int | None = None
    end_col: int | None = None

    @classmethod
    def of_frame(cls, frame: FrameType) -> SourceLocation:
        """The expression `frame` is executing right now (the whole line if unknown)."""
        return cls.of_instruction(frame.f_code, frame.f_lasti, frame.f_lineno)

    @classmethod
    def of_instruction(cls, code: CodeType, offset: int, fallback_lineno: int | None = None) -> SourceLocation:
        """The source span of the instruction at byte `offset` in `code`."""
        filename = code.co_filename
        fallback = fallback_lineno if fallback_lineno is not None else code.co_firstlineno
        if sys.version_info < (3, 11):  # no co_positions: the whole line
            return cls(filename, fallback)
        positions = list(code.co_positions())
        index = offset // 2
        if not 0 <= index < len(positions):
            return cls(filename, fallback)
        lineno, end_lineno, col, end_col = positions[index]
        if lineno is None:
            return cls(filename, fallback)
        line = linecache.getline(filename, lineno)
        return cls(
            filename,
            lineno,
            _char_column(line, col),
            end_lineno,
            _char_column(linecache.getline(filename, end_lineno or lineno), end_col),
        )

    @classmethod
    def of_definition(cls, code: CodeType) -> SourceLocation:
        """The first line of a function's definition."""
        return cls(code.co_filename, code.co_firstlineno)

    def render(self) -> tuple[str, str]:
        """`path:line[:col]`, and the source line with a caret line under the span."""
        where = f"{self.filename}:{self.lineno}"
        if self.col is not None:
            where += f":{self.col + 1}"
        line = linecache.getline(self.filename, self.lineno).rstrip("\r\n")
        if not line.strip():
            return where, ""
        indent = len(line) - len(line.lstrip())
        start = self.col if self.col is not None else indent
        end = len(line)
        if self.end_col is not None and self.end_lineno in (None, self.lineno):
            end = self.end_col
        end = max(end, start + 1)
        snippet = "    " + line[indent:]
        caret = "    " + " " * (start - indent) + "^" * (end - start)
        return where, f"\n{snippet}\n{caret}"


class TraceError(Exception):
    """A user mistake in the frontend, with the user's file, line and a caret.

    Without an explicit `location`, the error points at what the innermost frame
    outside attnc (see `user_frame`) is executing.
    """

    def __init__(self, message: str, location: SourceLocation | None = None) -> None:
        if location is None:
            frame = user_frame()
            location = SourceLocation.of_frame(frame) if frame is not None else None
        self.message = message
        self.location = location
        if location is None:
            super().__init__(message)
            return
        where, source = location.render()
        super().__init__(f"{where}: {message}{source}")

    def __reduce__(self) -> tuple[Callable[[str], TraceError], tuple[str]]:
        # The rendered text travels; the default would locate the error again on load.
        return (_restore, (str(self),))


class MissingAttributeError(TraceError, AttributeError):
    """An attribute a traced value lacks: reported like any TraceError, while `hasattr()` probes
    (which catch AttributeError) still answer False."""


def _restore(text: str) -> TraceError:
    error = TraceError.__new__(TraceError)
    Exception.__init__(error, text)
    error.message, error.location = text, None
    return error


def user_frame() -> FrameType | None:
    """The innermost frame of the caller's stack whose code is not attnc's or torch's.

    torch's Python-level operator wrappers (`Tensor.__floordiv__`, `Tensor.pow`, the
    `__torch_function__` dispatch) can sit between user code and attnc's handlers, so
    they are skipped too.
    """
    frame = sys._getframe(1)
    internal = [_ATTNC_DIR]
    torch = sys.modules.get("torch")
    if torch is not None and torch.__file__ is not None:
        internal.append(os.path.dirname(os.path.abspath(torch.__file__)))
    while frame is not None and _is_internal(frame.f_code.co_filename, internal):
        frame = frame.f_back
    return frame


def _is_internal(filename: str, internal: list[str]) -> bool:
    return any(filename.startswith(root + os.sep) for root in internal)


def _char_column(line: str, byte_col: int | None) -> int | None:
    """`co_positions` counts UTF-8 bytes; carets count characters."""
    if byte_col is None:
        return None
    return len(line.encode()[:byte_col].decode(errors="ignore"))
