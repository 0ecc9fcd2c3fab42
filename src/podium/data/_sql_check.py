"""The checks every SQL query on a pod's data passes before it runs.

A query is accepted only if it is exactly one read-only query (``SELECT``, a set operation
such as ``UNION``, optionally with ``WITH``) whose every table reference names one of the
pod's tables or a CTE visible at that point, which contains no statement other than a
query anywhere in the tree and no table function in ``FROM`` (``read_csv(...)``), and
which calls only functions on :data:`ALLOWED_FUNCTIONS`. The checks run on sqlglot's
syntax tree, and the function and ``FROM`` rules run again on DuckDB's own parse of the
SQL that will run, so a sqlglot node that DuckDB would run as some other function cannot
slip through.

These checks are what keeps a source's ignored columns hidden: DuckDB must be allowed to
read a CSV or Parquet source's files in full to serve its view, so a query that reached
a file reader, a plan or the catalog could see every column. DuckDB's own restrictions
(no other files, configuration locked; see :mod:`podium.data.sql`) stand behind them.

The SQL is read in a DuckDB dialect that also accepts Bitfount's backtick identifiers.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ErrorLevel, SqlglotError

from podium.core.errors import ForbiddenQueryError
from podium.data._sql_functions import ALLOWED_FUNCTIONS, SQLGLOT_SPELLINGS
from podium.data._text import one_line, quote_identifier

__all__ = [
    "ALLOWED_FUNCTIONS",
    "PodiumDuckDB",
    "TableReference",
    "ValidatedQuery",
    "check_pushdown",
    "quote_identifier",
    "table_references",
    "validate_query",
]

_FRAGMENT_CHARS = 120


class PodiumDuckDB(DuckDB):
    """DuckDB's SQL dialect that also reads backtick-quoted identifiers, as Bitfount writes."""

    class Tokenizer(DuckDB.Tokenizer):
        """DuckDB's tokenizer with backticks added to the identifier quotes."""

        IDENTIFIERS = ['"', "`"]  # noqa: RUF012 -- sqlglot declares this as a class-level list


#: Statement and clause types that write, configure, lock or reach outside, with a label.
_FORBIDDEN_NODES: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.Insert, "INSERT writes data"),
    (exp.Update, "UPDATE writes data"),
    (exp.Delete, "DELETE writes data"),
    (exp.Merge, "MERGE writes data"),
    (exp.Copy, "COPY reads or writes files"),
    (exp.Create, "CREATE changes the database"),
    (exp.Drop, "DROP changes the database"),
    (exp.Alter, "ALTER changes the database"),
    (exp.TruncateTable, "TRUNCATE writes data"),
    (exp.Into, "SELECT ... INTO creates a table"),
    (exp.Attach, "ATTACH opens another database"),
    (exp.Detach, "DETACH changes the attached databases"),
    (exp.Use, "USE changes the current database"),
    (exp.Install, "INSTALL downloads an extension"),
    (exp.LoadData, "LOAD reads files"),
    (exp.Export, "EXPORT writes files"),
    (exp.Pragma, "PRAGMA changes or reveals the configuration"),
    (exp.Set, "SET changes the configuration"),
    (exp.SetItem, "SET changes the configuration"),
    (exp.Command, "this statement is not a query"),
    (exp.Describe, "DESCRIBE is not a query"),
    (exp.Show, "SHOW is not a query"),
    (exp.Summarize, "SUMMARIZE is not a query"),
    (exp.Pivot, "PIVOT/UNPIVOT runs hidden statements; use GROUP BY with FILTER instead"),
    (exp.Transaction, "transaction control is not a query"),
    (exp.Commit, "transaction control is not a query"),
    (exp.Rollback, "transaction control is not a query"),
    (exp.Analyze, "ANALYZE is not a query"),
    (exp.Cache, "CACHE is not a query"),
    (exp.Uncache, "UNCACHE is not a query"),
    (exp.Refresh, "REFRESH is not a query"),
    (exp.Grant, "GRANT changes permissions"),
    (exp.Revoke, "REVOKE changes permissions"),
    (exp.Comment, "COMMENT ON changes the database"),
    (exp.Kill, "KILL stops other work"),
    (exp.Declare, "DECLARE is not a query"),
    (exp.Execute, "EXECUTE runs another statement"),
    (exp.Lock, "row locks (FOR UPDATE/SHARE) are not read-only"),
    (exp.Put, "PUT writes files"),
    (exp.Get, "GET reads files"),
)


#: Where the allowed functions are listed for modellers.
_FUNCTIONS_DOC = 'the "Functions" section of docs/sql.md'

#: What may stand in a FROM or JOIN: named tables, subqueries, VALUES lists, UNNEST.
_FROM_ITEMS = (exp.Table, exp.Subquery, exp.Values, exp.Unnest, exp.Lateral)


@dataclass(frozen=True, slots=True)
class TableReference:
    """One table reference in a query: a pod table or a CTE defined in the query."""

    node: exp.Table
    name: str
    is_cte: bool


@dataclass(frozen=True, slots=True)
class ValidatedQuery:
    """A query that passed :func:`validate_query`.

    Attributes:
        tree: The parsed query (do not mutate; copy it first).
        tables: The pod tables the query reads, each once.
        sql: The query as DuckDB will run it: regenerated from ``tree``, comments removed,
            every identifier double-quoted.
    """

    tree: exp.Query
    tables: tuple[str, ...]
    sql: str


def validate_query(sql: str, tables: Collection[str]) -> ValidatedQuery:
    """Parse and check one SQL query against a pod's tables.

    Args:
        sql: The query text. Identifiers may be double-quoted or backtick-quoted.
        tables: The names of the pod's tables. Matching is exact (case-sensitive).

    Returns:
        The parsed query, the tables it reads and the SQL to run.

    Raises:
        ForbiddenQueryError: The text is not exactly one read-only query over ``tables``;
            the message quotes the refused fragment and lists the allowed tables.
    """
    allowed = tuple(tables)
    try:
        return _validate(sql, allowed)
    except RecursionError as exc:
        raise ForbiddenQueryError(
            _message(
                f"a query nested too deeply to check: {_clip(sql)}",
                "flatten the nested parentheses or subqueries",
                allowed,
            )
        ) from exc


def _validate(sql: str, allowed: tuple[str, ...]) -> ValidatedQuery:
    statements = _parse(sql, allowed)
    if len(statements) != 1:
        fragments = "; ".join(_fragment(s) for s in statements[1:]) or "(nothing)"
        raise ForbiddenQueryError(
            _message(
                f"{len(statements)} statements, the extra: {fragments}",
                "exactly one statement is allowed per query",
                allowed,
            )
        )
    root = statements[0]
    _check_nodes(root, allowed)
    query = _check_root(root, allowed)
    _check_functions(query, allowed)
    _check_from_items(query, allowed)
    references = table_references(query, allowed)
    read: dict[str, None] = {ref.name: None for ref in references if not ref.is_cte}
    rendered = _render(query, allowed)
    _check_duckdb_reading(rendered, allowed)
    return ValidatedQuery(tree=query, tables=tuple(read), sql=rendered)


def table_references(query: exp.Expr, tables: Collection[str]) -> list[TableReference]:
    """Resolve every named table in ``query`` to a pod table or a visible CTE.

    A CTE counts as visible only where standard SQL scoping guarantees it (the body of
    its ``WITH``, the CTEs after it in that ``WITH``, itself when ``RECURSIVE``), so a
    name this function calls a CTE is one every database also resolves to that CTE.

    Raises:
        ForbiddenQueryError: A table function, a qualified name or an unknown table.
    """
    allowed = tuple(tables)
    known = set(allowed)
    references = []
    for node in query.find_all(exp.Table, bfs=False):
        name = _table_name(node, allowed)
        visible = _visible_ctes(node)
        if name in visible:
            references.append(TableReference(node=node, name=name, is_cte=True))
        elif name in known:
            references.append(TableReference(node=node, name=name, is_cte=False))
        else:
            raise ForbiddenQueryError(_unknown_table(node, name, allowed, visible))
    return references


def check_pushdown(query: ValidatedQuery, dialect: str) -> None:
    """Refuse functions that sqlglot does not know before a query goes to a database.

    An unknown function would pass to the database untranslated and unchecked (for
    example PostgreSQL's ``pg_read_file`` or ``query_to_xml``), so only functions with a
    known meaning may be pushed down.

    Raises:
        ForbiddenQueryError: The query calls a function sqlglot does not know.
    """
    node = next(query.tree.find_all(exp.Anonymous), None)
    if node is not None:
        raise ForbiddenQueryError(
            _message(
                f"function {node.name}() in {_fragment(node)}",
                f"only standard SQL functions can run in the {dialect} database behind "
                f"these tables, and {node.name}() is not one Podium can translate",
                query.tables,
            )
        )


# -- the checks --------------------------------------------------------------------------


def _parse(sql: str, allowed: tuple[str, ...]) -> list[exp.Expr]:
    try:
        parsed = sqlglot.parse(sql, read=PodiumDuckDB, error_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise ForbiddenQueryError(
            _message(
                f"a query that could not be parsed ({_first_line(str(exc))}): {_clip(sql)}",
                "write one SELECT statement in DuckDB SQL",
                allowed,
            )
        ) from exc
    statements = [s for s in parsed if s is not None]
    if not statements:
        raise ForbiddenQueryError(_message("an empty query", "write one SELECT statement", allowed))
    return statements


def _check_nodes(root: exp.Expr, allowed: tuple[str, ...]) -> None:
    for node in root.walk():
        for kind, why in _FORBIDDEN_NODES:
            if isinstance(node, kind):
                raise ForbiddenQueryError(_message(_fragment(node), why, allowed))


def _check_root(root: exp.Expr, allowed: tuple[str, ...]) -> exp.Query:
    inner = root
    while isinstance(inner, exp.Subquery) and not inner.alias:
        inner = inner.this
    if isinstance(inner, exp.Select | exp.SetOperation):
        return inner
    raise ForbiddenQueryError(
        _message(
            _fragment(root),
            "the statement is not a query; only SELECT (with WITH, UNION, INTERSECT or "
            "EXCEPT) is allowed",
            allowed,
        )
    )


def _check_functions(query: exp.Expr, allowed: tuple[str, ...]) -> None:
    for node in query.find_all(exp.Func):
        if isinstance(node, exp.Anonymous):
            name = node.name.lower()
            known = name in ALLOWED_FUNCTIONS
        else:
            spellings = [spelling.lower() for spelling in node.sql_names()]
            name = spellings[0] if spellings else type(node).__name__.lower()
            known = any(s in ALLOWED_FUNCTIONS or s in SQLGLOT_SPELLINGS for s in spellings)
        if not known:
            raise ForbiddenQueryError(_refused_function(name, _fragment(node), allowed))


def _check_from_items(query: exp.Expr, allowed: tuple[str, ...]) -> None:
    for clause in query.find_all(exp.From, exp.Join):
        item = clause.this
        if not isinstance(item, _FROM_ITEMS) or (
            isinstance(item, exp.Lateral) and not isinstance(item.this, exp.Subquery | exp.Unnest)
        ):
            raise ForbiddenQueryError(
                _message(
                    f"FROM item {_fragment(item)}",
                    "a query may read only the pod's tables, CTEs, subqueries, VALUES and UNNEST",
                    allowed,
                )
            )


def _table_name(node: exp.Table, allowed: tuple[str, ...]) -> str:
    target = node.this
    if not isinstance(target, exp.Identifier):
        raise ForbiddenQueryError(
            _message(
                f"table function {_fragment(node)}",
                "table functions and parameters are not allowed in FROM; read the pod's "
                "tables by name",
                allowed,
            )
        )
    if node.args.get("db") or node.args.get("catalog"):
        raise ForbiddenQueryError(
            _message(
                f"qualified table name {_fragment(node)}",
                "name a table without a database or schema",
                allowed,
            )
        )
    return target.name


def _visible_ctes(node: exp.Expr) -> set[str]:
    """The CTE names standard SQL scoping makes visible at ``node``."""
    visible: set[str] = set()
    child = node
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.With):
            if isinstance(child, exp.CTE):
                ctes = parent.expressions
                position = next(i for i, cte in enumerate(ctes) if cte is child)
                visible.update(cte.alias for cte in ctes[:position])
                if parent.args.get("recursive"):
                    visible.add(child.alias)
        else:
            with_ = parent.args.get("with_")
            if isinstance(with_, exp.With) and child is not with_:
                visible.update(cte.alias for cte in with_.expressions)
        child, parent = parent, parent.parent
    return visible


def _unknown_table(node: exp.Table, name: str, allowed: tuple[str, ...], visible: set[str]) -> str:
    folded = name.casefold()
    near = [t for t in (*allowed, *sorted(visible)) if t.casefold() == folded]
    if near:
        why = f"names are case-sensitive (did you mean {quote_identifier(near[0])})"
    elif any(ch in name for ch in "/\\:*") or "." in name:
        why = "reading files or URLs by path is not allowed; read the pod's tables by name"
    else:
        why = "it is not one of this pod's tables nor a CTE defined in the query"
    return _message(f"table {quote_identifier(name)} in {_fragment(node)}", why, allowed)


# -- the same checks on DuckDB's own reading of the SQL that will run ----------------------

#: What DuckDB's parser may read in FROM: named tables, subqueries, joins, VALUES, no FROM.
#: (``UNNEST`` is a table function there, checked on its own.)
_DUCKDB_FROM_ITEMS = frozenset({"BASE_TABLE", "SUBQUERY", "JOIN", "EXPRESSION_LIST", "EMPTY"})

_parser_lock = threading.Lock()
_parsers: dict[int, duckdb.DuckDBPyConnection] = {}  # by process id: never shared across fork


def _check_duckdb_reading(sql: str, allowed: tuple[str, ...]) -> None:
    """Check the SQL that will run as DuckDB itself parses it.

    The sqlglot checks judge sqlglot's tree; DuckDB runs the text regenerated from it. This
    parses that text with DuckDB's own parser (``json_serialize_sql``, which binds and runs
    nothing) and applies the allow list to every function DuckDB will call, and the FROM
    rules to every table reference, so that no sqlglot node that renders as a different or
    extra function gets past. Text DuckDB cannot parse is left to fail when it runs.
    """
    statements = _duckdb_statements(sql, allowed)
    if statements is None:
        return
    if len(statements) != 1:
        why = "DuckDB does not read it as exactly one statement"
        raise ForbiddenQueryError(_message(_clip(sql), why, allowed))
    nodes = list(_json_dicts(statements))
    names = {table.casefold() for table in allowed} | _duckdb_cte_names(nodes)
    for node in nodes:
        function = node.get("function_name")
        if isinstance(function, str) and function.lower() not in ALLOWED_FUNCTIONS:
            raise ForbiddenQueryError(_refused_function(function, _located(sql, node), allowed))
        if "sample" in node and "query_location" in node and not _duckdb_from_item_ok(node, names):
            why = "a query may read only the pod's tables, CTEs, subqueries, VALUES and UNNEST"
            raise ForbiddenQueryError(_message(f"FROM item {_located(sql, node)}", why, allowed))


def _duckdb_cte_names(nodes: list[dict[str, object]]) -> set[str]:
    """Every CTE name defined anywhere in the statement, case-folded."""
    names = set()
    for node in nodes:
        cte_map = node.get("cte_map")
        entries = cte_map.get("map") if isinstance(cte_map, dict) else None
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict):
                names.add(str(entry.get("key")).casefold())
    return names


def _duckdb_from_item_ok(node: dict[str, object], names: set[str]) -> bool:
    kind = node.get("type")
    if kind == "TABLE_FUNCTION":
        function = node.get("function")
        return isinstance(function, dict) and str(function.get("function_name")).lower() == "unnest"
    if kind == "BASE_TABLE":
        return (
            not node.get("catalog_name")
            and not node.get("schema_name")
            and str(node.get("table_name")).casefold() in names
        )
    return kind in _DUCKDB_FROM_ITEMS


def _duckdb_statements(sql: str, allowed: tuple[str, ...]) -> list[object] | None:
    """DuckDB's parse of ``sql``: its statements as JSON, or None if it does not parse."""
    try:
        with _parser_cursor() as cursor:
            rows = cursor.execute("SELECT json_serialize_sql($1)", [sql]).fetchall()
        parsed = json.loads(rows[0][0])
    except (duckdb.Error, ValueError, IndexError, TypeError) as exc:
        why = f"Podium could not check it with DuckDB's parser ({_first_line(str(exc))})"
        raise ForbiddenQueryError(_message(_clip(sql), why, allowed)) from exc
    if not isinstance(parsed, dict):
        raise ForbiddenQueryError(_message(_clip(sql), "DuckDB's parser gave no reading", allowed))
    if parsed.get("error"):
        if parsed.get("error_type") == "parser":
            return None  # it cannot run either: running it reports the syntax error
        why = f"DuckDB does not read it as a query ({parsed.get('error_message')})"
        raise ForbiddenQueryError(_message(_clip(sql), why, allowed))
    statements = parsed.get("statements")
    return statements if isinstance(statements, list) else []


def _parser_cursor() -> duckdb.DuckDBPyConnection:
    """A cursor on a private, empty, locked-down DuckDB used only to parse (one a process)."""
    with _parser_lock:
        parser = _parsers.get(os.getpid())
        if parser is None:
            parser = duckdb.connect(
                ":memory:",
                config={
                    "enable_external_access": False,
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                    "threads": 1,
                    "lock_configuration": True,
                },
            )
            _parsers[os.getpid()] = parser
        return parser.cursor()


def _json_dicts(tree: object) -> Iterator[dict[str, object]]:
    """Every JSON object in ``tree``, in document order, walked without recursion."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(reversed(item.values()))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _located(sql: str, node: dict[str, object]) -> str:
    """The SQL from where DuckDB located ``node``, to quote in a message."""
    location = node.get("query_location")
    start = location if isinstance(location, int) and 0 <= location < len(sql) else 0
    return _clip(sql[start:])


# -- helpers -------------------------------------------------------------------------------


def _refused_function(name: str, fragment: str, allowed: tuple[str, ...]) -> str:
    return _message(
        f"function {name}() in {fragment}",
        f"{name}() is not on the list of functions a query may call (see {_FUNCTIONS_DOC})",
        allowed,
    )


def _render(query: exp.Expr, allowed: tuple[str, ...]) -> str:
    try:
        return query.sql(
            dialect=PodiumDuckDB,
            identify=True,
            comments=False,
            unsupported_level=ErrorLevel.RAISE,
        )
    except SqlglotError as exc:
        raise ForbiddenQueryError(
            _message(
                f"{_clip(str(exc))} in {_fragment(query)}",
                "the query uses syntax Podium cannot check",
                allowed,
            )
        ) from exc


def _fragment(node: exp.Expr) -> str:
    """The node as SQL to quote in a message (its type name where it has no DuckDB SQL)."""
    try:
        text = node.sql(dialect=PodiumDuckDB, comments=False, unsupported_level=ErrorLevel.IGNORE)
    except SqlglotError:
        text = ""
    return _clip(text or type(node).__name__.upper())


def _clip(text: str) -> str:
    return repr(one_line(text, _FRAGMENT_CHARS))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _message(refused: str, why: str, allowed: Collection[str]) -> str:
    tables = ", ".join(quote_identifier(t) for t in allowed) or "(none)"
    return (
        f"Query refused: {refused} -- {why}. Allowed: one read-only SELECT (WITH, UNION, "
        f"INTERSECT, EXCEPT, subqueries) over the tables {tables}."
    )
