"""Where each key and value of a TOML document is: (line, column), 1-based.

``tomllib`` parses values but forgets positions, so this scanner walks the same text once
more and records the position of every key path (tables, array-of-tables entries, keys in
inline tables, array elements). It assumes the text already parsed with ``tomllib``.
"""

from __future__ import annotations

from .issues import KeyPath

Positions = dict[KeyPath, tuple[int, int]]

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.positions: Positions = {}
        self.aot_counts: dict[KeyPath, int] = {}
        self.line_starts = [0]
        for idx, ch in enumerate(text):
            if ch == "\n":
                self.line_starts.append(idx + 1)

    # -- low level ---------------------------------------------------------------------
    def pos(self, index: int) -> tuple[int, int]:
        lo, hi = 0, len(self.line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.line_starts[mid] <= index:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, index - self.line_starts[lo] + 1

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def skip_ws(self, newlines: bool) -> None:
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self.i += 1
            elif ch == "#":
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            else:
                return

    def read_string(self) -> str:
        s = self.s
        quote = s[self.i]
        if s.startswith(quote * 3, self.i):
            end = s.find(quote * 3, self.i + 3)
            while quote == '"' and end > 0 and _escaped(s, end):
                end = s.find(quote * 3, end + 1)
            end = len(s) if end < 0 else end
            while s.startswith(quote, end + 3):  # up to two quotes may close the string
                end += 1
            raw = s[self.i + 3 : end]
            self.i = end + 3
            return raw
        j = self.i + 1
        out = []
        while j < len(s) and s[j] != quote:
            if quote == '"' and s[j] == "\\":
                nxt = s[j + 1 : j + 2]
                out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(nxt, nxt))
                j += 2
                continue
            out.append(s[j])
            j += 1
        self.i = j + 1
        return "".join(out)

    def read_key(self) -> list[tuple[str, int]]:
        parts: list[tuple[str, int]] = []
        while True:
            self.skip_ws(newlines=False)
            start = self.i
            if self.peek() in ('"', "'"):
                parts.append((self.read_string(), start))
            else:
                while self.i < len(self.s) and self.s[self.i] in _BARE:
                    self.i += 1
                parts.append((self.s[start : self.i], start))
            self.skip_ws(newlines=False)
            if self.peek() == ".":
                self.i += 1
                continue
            return parts

    # -- structure ---------------------------------------------------------------------
    def resolve(self, keys: list[str]) -> KeyPath:
        """A header's keys → the concrete path (array-of-tables prefixes get their index)."""
        path: list[str | int] = []
        for key in keys:
            path.append(key)
            count = self.aot_counts.get(tuple(path))
            if count is not None:
                path.append(count - 1)
        return tuple(path)

    def record(self, path: KeyPath, index: int) -> None:
        self.positions.setdefault(path, self.pos(index))

    def document(self) -> Positions:
        table: KeyPath = ()
        while True:
            self.skip_ws(newlines=True)
            if self.i >= len(self.s):
                return self.positions
            start = self.i
            if self.s.startswith("[[", self.i):
                self.i += 2
                keys = [k for k, _ in self.read_key()]
                self.i += 2  # ]]
                parent = self.resolve(keys[:-1])
                aot = parent + (keys[-1],)
                self.aot_counts[aot] = self.aot_counts.get(aot, 0) + 1
                self.record(aot, start)
                table = aot + (self.aot_counts[aot] - 1,)
                self.record(table, start)
            elif self.peek() == "[":
                self.i += 1
                keys = [k for k, _ in self.read_key()]
                self.i += 1  # ]
                table = self.resolve(keys)
                for depth in range(1, len(table) + 1):
                    self.record(table[:depth], start)
            else:
                self.key_value(table)

    def key_value(self, table: KeyPath) -> None:
        parts = self.read_key()
        path = table
        for key, at in parts:
            path = path + (key,)
            self.record(path, at)
        self.skip_ws(newlines=False)
        self.i += 1  # '='
        self.skip_ws(newlines=False)
        self.value(path)

    def value(self, path: KeyPath) -> None:
        ch = self.peek()
        if ch in ('"', "'"):
            self.read_string()
        elif ch == "[":
            self.i += 1
            index = 0
            while True:
                self.skip_ws(newlines=True)
                if self.peek() == "]":
                    self.i += 1
                    return
                self.record(path + (index,), self.i)
                self.value(path + (index,))
                index += 1
                self.skip_ws(newlines=True)
                if self.peek() == ",":
                    self.i += 1
        elif ch == "{":
            self.i += 1
            while True:
                self.skip_ws(newlines=False)
                if self.peek() == "}":
                    self.i += 1
                    return
                self.key_value(path)
                self.skip_ws(newlines=False)
                if self.peek() == ",":
                    self.i += 1
        else:
            while self.i < len(self.s) and self.s[self.i] not in ",]}\n#":
                self.i += 1


def _escaped(s: str, index: int) -> bool:
    backslashes = 0
    while index - 1 - backslashes >= 0 and s[index - 1 - backslashes] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def toml_positions(text: str) -> Positions:
    """Maps every key path of a valid TOML document to its 1-based (line, column)."""
    try:
        return _Scanner(text).document()
    except (IndexError, ValueError):  # never let position finding break a load
        return {}
