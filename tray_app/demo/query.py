"""The server's query language over in-memory documents: filters, projection, order, paging.

Pure functions over plain dicts (the documents as the server stores them), so every endpoint
shares one implementation of the semantics clients depend on.

Tested in tests/unit/demo/test_emulator.py (filters, projection, paging, scrolls) and
test_emulator_conformance.py (the server's own semantics).
"""

from __future__ import annotations

import copy
import functools
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from tray_app.demo.errors import (
    ApiError,
    bad_request,
    missing_fields,
    missing_required_fields,
    validation_error,
)

MAX_PAGE_SIZE = 500
MAX_SCROLLS = 1000

_MISSING = object()
Doc = dict[str, Any]


@functools.lru_cache(maxsize=4096)
def _parts(path: str) -> tuple[str, ...]:
    # Every document of a query is read with the same few paths: split each once.
    return tuple(path.split("."))


def get_path(doc: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path, or `_MISSING`."""
    cur: Any = doc
    for part in _parts(path):
        # `type(...) is dict` first: the ABC check is slow and documents are plain dicts.
        if not (type(cur) is dict or isinstance(cur, Mapping)) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


def lookup(doc: Mapping[str, Any], path: str, default: Any = None) -> Any:
    value = get_path(doc, path)
    return default if value is _MISSING else value


def _is_empty(value: Any) -> bool:
    return value is _MISSING or value is None or value == "" or value == [] or value == {}


def fields_value_error(extra: str, **info: Any) -> ApiError:
    return bad_request(16, "Invalid value for fields", extra, **info)


_OPERATORS = {"__$all": "and", "__$and": "and", "__$any": "or", "__$or": "or"}


def compile_list_filter(values: Any, field: str = "") -> Callable[[Any], bool]:
    """A list filter exactly as clearml-server reads it (database/model/base.py,
    `NewListFieldBucketHelper` and `get_list_field_query`, legacy mode).

    Values are strings or null (anything else is 400/16). Without operators they are OR-ed,
    and `-x` excludes x. An operator (`__$all`/`__$and`, `__$any`/`__$or`) opens a context for
    the values after it, and the first operator seen joins the groups (AND when a value came
    first); after any operator `-x` is the literal "-x" until `__$nop` resets. `__$not`
    negates the next value. `null` adds "or the field is empty".
    """
    if not isinstance(values, list | tuple):
        values = [values]
    legacy = True
    context = "or"
    global_op: str | None = None
    allow_empty = False
    unary: str | None = None
    groups: dict[str, list[str]] = {}  # "in" / "all" / "nin" -> values
    for value in values:
        if value is None:
            unary = None
            if global_op is None:
                global_op = "and"
            allow_empty = True
            continue
        if not isinstance(value, str):
            raise fields_value_error(
                "invalid value type, string expected", field=field, value=str(value)
            )
        if value == "__$nop":
            unary = None
            if global_op is None:
                global_op = "and"
            context, legacy = "or", True
            continue
        if value.startswith("__$"):
            if unary:
                raise fields_value_error("Value is expected after", field=field, operator=unary)
            if value == "__$not":
                unary = value
                continue
            if value not in _OPERATORS:
                raise fields_value_error("Unsupported operator", field=field, operator=value)
            context = _OPERATORS[value]
            legacy = False
            if global_op is None:
                global_op = context
            continue
        include = True
        if not unary and legacy and value.startswith("-"):
            value = value[1:]
            if not value:
                raise fields_value_error(
                    "Missing value after the exclude prefix -", field=field, value=value
                )
            include = False
        elif unary:
            include, unary = False, None
        if global_op is None:
            global_op = "and"
        modifier = ("all" if context == "and" else "in") if include else "nin"
        groups.setdefault(modifier, []).append(value)
    if unary:
        raise fields_value_error("Value is expected after", operator=unary)
    combine = any if global_op == "or" else all

    def have_of(field_value: Any) -> set[Any]:
        if isinstance(field_value, list):
            return {v for v in field_value if isinstance(v, str | int | float | bool)}
        if isinstance(field_value, str | int | float | bool):
            return {field_value}
        return set()

    def check(modifier: str, wanted: frozenset[str], have: set[Any]) -> bool:
        if modifier == "in":
            return bool(have & wanted)
        if modifier == "all":
            return wanted <= have
        return not have & wanted

    checks = [functools.partial(check, m, frozenset(w)) for m, w in groups.items()]

    def match(field_value: Any) -> bool:
        empty = _is_empty(field_value)
        if checks:
            have = have_of(field_value)
            if combine(c(have) for c in checks):
                return True
            return allow_empty and empty
        return empty if allow_empty else True

    return match


def compile_filters_entry(field: str, data: Any) -> Callable[[Any], bool]:
    """One field of the `filters` request parameter (API 2.27+), as database/model/base.py
    `ListQueryFilter` builds it: "any" = include `in` OR exclude `not all`; "all" = include
    `all` AND exclude `nin`; a null value means "is empty" (include) / "is not" (exclude); the
    two parts are joined by `op` ("and" by default, or "or")."""
    if not isinstance(data, Mapping):
        raise validation_error(
            "invalid filter for field, dictionary expected", field=field, value=str(data)
        )
    unknown = set(data) - {"any", "all", "op"}
    op = data.get("op", "and")
    if unknown or op not in ("and", "or"):
        raise validation_error("invalid filter", field=field, value=str(dict(data)))

    def have_of(value: Any) -> set[Any]:
        if isinstance(value, list):
            return {v for v in value if isinstance(v, str | int | float | bool)}
        return {value} if isinstance(value, str | int | float | bool) else set()

    def modifier(mode: str, include: bool, wanted: frozenset[Any], value: Any) -> bool:
        have = have_of(value)
        if mode == "any":
            return bool(have & wanted) if include else not wanted <= have
        return wanted <= have if include else not have & wanted

    def is_empty_list(value: Any) -> bool:
        return isinstance(value, list) and not value

    parts: list[tuple[str, list[Callable[[Any], bool]]]] = []
    for mode in ("any", "all"):
        condition = data.get(mode)
        if not condition:
            continue
        if not isinstance(condition, Mapping) or set(condition) - {"include", "exclude"}:
            raise validation_error("invalid filter", field=field, value=str(dict(data)))
        checks: list[Callable[[Any], bool]] = []
        for key, include in (("include", True), ("exclude", False)):
            values = condition.get(key) or []
            try:
                unique = set(values)
            except TypeError as exc:
                raise validation_error("invalid filter", field=field, value=str(exc)) from exc
            if None in unique:
                unique.discard(None)
                checks.append(is_empty_list if include else lambda v: not is_empty_list(v))
            if unique:
                checks.append(functools.partial(modifier, mode, include, frozenset(unique)))
        if checks:
            parts.append((mode, checks))
    if not parts:
        return lambda _value: True

    def match(value: Any) -> bool:
        results = [
            (any if mode == "any" else all)(check(value) for check in checks)
            for mode, checks in parts
        ]
        return all(results) if op == "and" else any(results)

    return match


def compile_equality(value: Any) -> Callable[[Any], bool]:
    """An exact-match field (mongo equality: an array field matches when it holds the value)."""
    return lambda v: v == value or (isinstance(v, list) and value in v)


def _matches(key: str, patterns: frozenset[str]) -> bool:
    return key in patterns or any(
        p.endswith("*") and key.startswith(p[:-1]) for p in patterns if p.endswith("*")
    )


_DATE_OP = re.compile(r"^(>=|<=|>|<|=)?(.*)$")


def _to_epoch(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise validation_error("invalid date value", value=text) from exc
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def compile_date_filter(values: Any) -> Callable[[Any], bool]:
    """`[">=2024-01-01T00:00:00", "<2024-02-01"]` (ISO or epoch seconds); all must hold."""
    if not isinstance(values, list):
        values = [values]
    checks: list[Callable[[float], bool]] = []
    if len(values) == 2 and not any(
        str(v).startswith((">", "<", "=")) for v in values if v is not None
    ):
        # [min, max] (either may be null): base.py `get_range_field_query`, both ends included
        low, high = (_to_epoch(v) if v is not None else None for v in values)
        if low is not None:
            checks.append(functools.partial(operator.le, low))
        if high is not None:
            checks.append(functools.partial(operator.ge, high))
        values = []
    for raw in values:
        if raw is None:
            continue
        m = _DATE_OP.match(str(raw))
        assert m is not None
        op, operand = m.group(1) or ">=", m.group(2)
        bound = _to_epoch(operand)
        if bound is None:
            continue
        b = bound
        checks.append(
            {
                ">=": lambda x, b=b: x >= b,
                "<=": lambda x, b=b: x <= b,
                ">": lambda x, b=b: x > b,
                "<": lambda x, b=b: x < b,
                "=": lambda x, b=b: x == b,
            }[op]
        )

    def match(field_value: Any) -> bool:
        if not checks:
            return True
        stamp = _to_epoch(field_value) if not _is_empty(field_value) else None
        if stamp is None:
            return False
        return all(check(stamp) for check in checks)

    return match


def compile_regex(pattern: Any) -> Callable[[Any], bool]:
    try:
        rx = re.compile(str(pattern), re.IGNORECASE)
    except re.error as exc:
        raise validation_error("invalid regular expression", pattern=pattern) from exc
    return lambda value: isinstance(value, str) and rx.search(value) is not None


class QuerySpec:
    """Which request keys are filters, and of what kind, for one collection."""

    def __init__(
        self,
        list_fields: Iterable[str],
        regex_fields: Iterable[str] = ("name",),
        date_fields: Iterable[str] = (),
        text_fields: Iterable[str] = ("id", "name"),
        control_keys: Iterable[str] = (),
        field_names: Iterable[str] | None = None,
        exact_fields: Iterable[str] = (),
    ) -> None:
        # Patterns may end in "*" ("hyperparams.*"), as in the server's QueryParameterOptions.
        self.list_fields = frozenset(list_fields)
        self.exact_fields = frozenset(exact_fields)
        self.regex_fields = frozenset(regex_fields)
        self.date_fields = frozenset(date_fields)
        self.text_fields = tuple(text_fields)
        self.control_keys = frozenset(control_keys) | _CONTROL_KEYS
        # Top-level document fields a filter may name; other request keys are ignored, as the
        # server ignores keys it does not know (the SDK even sends `method`).
        self.field_names = (
            frozenset(field_names)
            | self.list_fields
            | self.regex_fields
            | self.date_fields
            | self.exact_fields
            if field_names is not None
            else None
        )


_CONTROL_KEYS = frozenset(
    {
        "only_fields",
        "order_by",
        "page",
        "page_size",
        "scroll_id",
        "refresh_scroll",
        "size",
        "search_hidden",
        "include_subprojects",
        "allow_public",
        "search_text",
        "_any_",
        "_all_",
        "filters",
        "max_task_entries",
        "shallow_search",
        "check_own_contents",
        "include_stats",
        "stats_for_state",
        "active_users",
        "active_in_projects",
        "non_public",
        "get_extended_info",
    }
)


def build_predicate(request: Mapping[str, Any], spec: QuerySpec) -> Callable[[Doc], bool]:
    """One predicate for every filter in a get_all request (unknown keys are dotted equality)."""
    checks: list[tuple[str, Callable[[Any], bool]]] = []
    filters = request.get("filters")
    if filters is not None and not isinstance(filters, Mapping):
        raise fields_value_error(
            "invalid value type, string expected", field=str(filters), value=str(filters)
        )
    filtered: set[str] = set()
    for key, data in (filters or {}).items():
        if _matches(key, spec.list_fields) and data:
            checks.append((key, compile_filters_entry(key, data)))
            filtered.add(key)  # the plain parameter of the same field is then ignored
    for key, value in request.items():
        if key in spec.control_keys or key in filtered or value is None:
            continue
        if key in spec.regex_fields:
            if value == "":
                continue
            checks.append((key, compile_regex(value)))
        elif _matches(key, spec.list_fields):
            if value == []:
                continue
            checks.append((key, compile_list_filter(value, key)))
        elif key in spec.date_fields:
            checks.append((key, compile_date_filter(value)))
        elif _matches(key, spec.exact_fields) or (
            spec.field_names is not None and key.split(".", 1)[0] in spec.field_names
        ):
            checks.append((key, compile_equality(value)))
        # Anything else is not a declared filter: the server ignores it (base.py
        # `_prepare_query_no_company` only pops the fields its options name).

    text_checks: list[Callable[[Doc], bool]] = []
    search_text = request.get("search_text")
    if search_text:
        needle = str(search_text).lower()
        fields = spec.text_fields

        def text_match(d: Doc, needle: str = needle, fields: tuple[str, ...] = fields) -> bool:
            return any(needle in str(lookup(d, f, "")).lower() for f in fields)

        text_checks.append(text_match)
    for key, combine in (("_any_", any), ("_all_", all)):
        clause = request.get(key)
        if isinstance(clause, Mapping) and clause.get("pattern"):
            rx = compile_regex(clause["pattern"])
            clause_fields = tuple(clause.get("fields") or spec.text_fields)

            def clause_match(
                d: Doc,
                rx: Callable[[Any], bool] = rx,
                fields: tuple[str, ...] = clause_fields,
                combine: Callable[[Iterable[bool]], bool] = combine,
            ) -> bool:
                return combine(rx(lookup(d, f, "")) for f in fields)

            text_checks.append(clause_match)

    def predicate(doc: Doc) -> bool:
        for path, check in checks:
            value = get_path(doc, path)
            if not check(value):
                return False
        return all(tc(doc) for tc in text_checks)

    return predicate


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is _MISSING or value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, float(value))
    if isinstance(value, list):
        return (2, ",".join(str(v) for v in value))
    return (2, str(value))


def order_docs(docs: list[Doc], order_by: Sequence[str] | str | None) -> list[Doc]:
    if not order_by:
        return docs
    keys = [order_by] if isinstance(order_by, str) else list(order_by)
    if not all(isinstance(k, str) for k in keys):
        raise validation_error("order_by must be a list of field names")
    result = list(docs)
    for key in reversed(keys):
        if not key:
            continue
        desc = key.startswith("-")
        path = key.lstrip("-+")

        def key_of(d: Doc, p: str = path) -> tuple[int, Any]:
            return _sort_key(get_path(d, p))

        result.sort(key=key_of, reverse=desc)
    return result


def page_bounds(request: Mapping[str, Any]) -> tuple[int, int]:
    """(offset, size) from page/page_size as database/model/base.py `get_paging` reads them:
    page_size defaults to (and is capped at) max_page_size, page to 0."""
    page = request.get("page")
    page_size = request.get("page_size")
    try:
        page_i = int(page) if page is not None else 0
        size_i = int(page_size) if page_size is not None else MAX_PAGE_SIZE
    except (TypeError, ValueError) as exc:
        raise validation_error("invalid paging value", page=page, page_size=page_size) from exc
    if page_i < 0:
        raise validation_error("page must be >=0", field="page")
    if size_i < 1:
        raise validation_error("page_size must be >0", field="page_size")
    size_i = min(size_i, MAX_PAGE_SIZE)
    return page_i * size_i, size_i


def scroll_size(request: Mapping[str, Any]) -> int:
    """base.py `validate_scroll_size`: a scroll needs an integer `size` >= 1 (never capped)."""
    size = request.get("size")
    if not size or not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise validation_error(
            "Integer size parameter greater than 1 should be provided when working with scroll"
        )
    return size


_ATOMIC = (str, int, float, bool, type(None))


def _set_path(out: Doc, parts: Sequence[str], value: Any) -> None:
    cur = out
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    # Only containers need copying (most projected values are strings and numbers).
    cur[parts[-1]] = value if isinstance(value, _ATOMIC) else copy.deepcopy(value)


def _del_path(out: Doc, parts: Sequence[str]) -> None:
    cur: Any = out
    for part in parts[:-1]:
        if not isinstance(cur, dict) or part not in cur:
            return
        cur = cur[part]
    if isinstance(cur, dict):
        cur.pop(parts[-1], None)


@functools.lru_cache(maxsize=256)
def _field_paths(
    only_fields: tuple[str, ...],
) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """(included paths, excluded paths) of an `only_fields` list, split once per query."""
    wanted = [f for f in only_fields if f and not f.startswith("-")]
    # projection.py: a subfield of another requested field is dropped, so the parent comes
    # back whole (MongoDB would otherwise keep only the most nested one).
    includes = tuple(
        _parts(f) for f in wanted if not any(f.startswith(other + ".") for other in wanted)
    )
    excludes = tuple(_parts(f[1:]) for f in only_fields if f.startswith("-") and f != "-id")
    return includes, excludes


def project(doc: Doc, only_fields: Sequence[str] | None) -> Doc:
    """Apply `only_fields` (dotted; `-x` excludes); `id` is always kept."""
    if not only_fields:
        return copy.deepcopy(doc)
    includes, excludes = _field_paths(tuple(only_fields))
    if includes:
        out: Doc = {"id": doc.get("id")}
        for parts in includes:
            value: Any = doc
            for part in parts:
                if not (type(value) is dict or isinstance(value, Mapping)) or part not in value:
                    value = _MISSING
                    break
                value = value[part]
            if value is not _MISSING:
                _set_path(out, parts, value)
    else:
        out = copy.deepcopy(doc)
    for parts in excludes:
        _del_path(out, parts)
    return out


def run_query(
    docs: Iterable[Doc],
    request: Mapping[str, Any],
    spec: QuerySpec,
    scrolls: dict[str, int] | None = None,
    new_scroll_id: Callable[[], str] | None = None,
) -> tuple[list[Doc], str | None]:
    """Filter, order and page; return (matching docs, scroll id to return or None)."""
    only_fields = request.get("only_fields")
    if only_fields is not None and not isinstance(only_fields, list):
        raise validation_error("only_fields must be a list")
    predicate = build_predicate(request, spec)
    matched = order_docs([d for d in docs if predicate(d)], request.get("order_by"))
    if "scroll_id" in request and scrolls is not None and new_scroll_id is not None:
        # base.py `get_data_with_scroll_support`: an unknown or expired scroll id silently
        # starts a new scroll (a new id, position 0); refresh_scroll re-reads from the start.
        size = scroll_size(request)
        scroll_id = request.get("scroll_id")
        if scroll_id and scroll_id in scrolls:
            offset = scrolls[scroll_id]
        else:
            scroll_id = new_scroll_id()
            offset = 0
            while len(scrolls) >= MAX_SCROLLS:  # the server expires them; we drop the oldest
                del scrolls[next(iter(scrolls))]
        if request.get("refresh_scroll"):
            size, offset = max(offset, size), 0
        page = matched[offset : offset + size]
        scrolls[str(scroll_id)] = offset + len(page)
        return page, str(scroll_id)
    offset, size = page_bounds(request)
    return matched[offset : offset + size], None


def ensure_list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [value]
    raise validation_error("expected a list", field=name)


def require(request: Mapping[str, Any], *names: str, declared: bool = False) -> None:
    """Required request fields: 400/12 as a data model reports them, or 400/11 for the few
    endpoints declared with `required_fields` (`declared=True`)."""
    missing = [n for n in names if request.get(n) in (None, "")]
    if missing:
        raise missing_required_fields(missing) if declared else missing_fields(missing)


__all__ = [
    "MAX_PAGE_SIZE",
    "ApiError",
    "QuerySpec",
    "build_predicate",
    "compile_list_filter",
    "ensure_list",
    "get_path",
    "lookup",
    "order_docs",
    "page_bounds",
    "project",
    "require",
    "run_query",
]
