"""The event loop the server runs on: uvloop where it is installed (the ``fast`` extra),
else asyncio's own; the choice is logged once at startup."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_name() -> str:
    """``uvloop`` when uvloop is importable, else ``asyncio``."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Callable[[], Coroutine[Any, Any, T]], *, use_uvloop: bool = True) -> T:
    """Runs ``main()`` to completion on uvloop when available (and ``use_uvloop``), else on
    asyncio's default loop."""
    if use_uvloop and loop_name() == "uvloop":
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


def running_loop_name() -> str:
    """What kind of loop runs the caller (for the startup log)."""
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
