"""Parse argv lists with the real clearml-session 0.17 argparse parser, in a child process.

Line protocol on stdin/stdout: one JSON list of arguments (without the executable) in, one JSON
object out: {"args": {...parsed namespace...}} or {"error": "<argparse message>"}. The child keeps
the clearml SDK import (and anything it may configure) out of the test process.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from argparse import ArgumentParser
from typing import Any


def _jsonable(value: Any) -> Any:
    if isinstance(value, io.TextIOBase):
        name = getattr(value, "name", "")
        value.close()
        return {"file": name}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def main() -> None:
    from clearml_session.__main__ import setup_parser  # type: ignore[import-untyped]

    parser = ArgumentParser(prog="clearml-session")
    setup_parser(parser)
    options = sorted(parser._option_string_actions)
    print(json.dumps({"options": options}), flush=True)
    for line in sys.stdin:
        argv = json.loads(line)
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                namespace = parser.parse_args(argv)
        except SystemExit:
            print(json.dumps({"error": stderr.getvalue()}), flush=True)
            continue
        args = {k: _jsonable(v) for k, v in vars(namespace).items() if k != "func"}
        print(json.dumps({"args": args}), flush=True)


if __name__ == "__main__":
    main()
