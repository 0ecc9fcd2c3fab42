"""Rewriting a checked query for the database behind its tables (push-down).

Each pod-table reference becomes a subquery over the source's relation (only the kept
columns, modifiers applied), the query is written in the database's dialect with sqlglot
(every name quoted) and the relations' own SQL is spliced in last, as text sqlglot never
rewrites. Every CTE of the modeller's query is renamed first, so that none can stand in
for a table inside that spliced SQL. :func:`refuse_server_functions` keeps the server's
identity (version, user, database, ...) out of the answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.dialects.sqlite import SQLite
from sqlglot.errors import ErrorLevel, SqlglotError

from podium.core.errors import ForbiddenQueryError, QueryExecutionError
from podium.data._sql_check import (
    PodiumDuckDB,
    TableReference,
    ValidatedQuery,
    table_references,
)
from podium.data._text import one_line, quote_identifier

if TYPE_CHECKING:
    from podium.data.sources.database_source import DatabaseSource

__all__ = ["pushdown_sql", "refuse_server_functions"]

_SHOWN_CALL_CHARS = 80
#: Table-reference arguments other than the name and alias that push-down cannot keep.
_PUSHDOWN_TABLE_ARGS = frozenset({"this", "alias"})
#: Functions sqlglot names ``Current...`` that only tell the time; every other one (user,
#: role, database, schema, catalog, version, session, ...) describes the server.
_TIME_FUNCTIONS = (
    exp.CurrentDate,
    exp.CurrentDatetime,
    exp.CurrentTime,
    exp.CurrentTimestamp,
    exp.CurrentTimestampLTZ,
)
#: Functions that reveal which server, database, user or session answers a push-down.
_SERVER_FUNCTIONS = frozenset(
    {
        "connection_id",
        "current_catalog",
        "current_database",
        "current_role",
        "current_schema",
        "current_schemas",
        "current_user",
        "database",
        "inet_client_addr",
        "inet_client_port",
        "inet_server_addr",
        "inet_server_port",
        "pg_backend_pid",
        "pg_conf_load_time",
        "pg_postmaster_start_time",
        "schema",
        "session_user",
        "sqlite_source_id",
        "sqlite_version",
        "system_user",
        "user",
        "version",
    }
)


class _SQLiteBackticks(SQLite):
    """SQLite written with backtick identifiers.

    SQLite reads a double-quoted name that matches no column as a string literal, so
    ``SELECT "ignored_col"`` would quietly return text; a backticked name never does.
    """

    class Tokenizer(SQLite.Tokenizer):
        """SQLite's tokenizer with backticks first among the identifier quotes."""

        IDENTIFIERS = ["`", '"']  # noqa: RUF012 -- sqlglot declares this as a class-level list


#: sqlglot dialect name -> the dialect push-down writes in, where it is not sqlglot's own.
_PUSHDOWN_DIALECTS: dict[str, type[Dialect]] = {"sqlite": _SQLiteBackticks}


def pushdown_sql(
    checked: ValidatedQuery,
    dialect_name: str,
    sources: Mapping[str, DatabaseSource],
    columns: Mapping[str, list[str]],
) -> str:
    """``checked`` in a database's dialect, each pod table a subquery over its relation.

    Args:
        checked: The validated query.
        dialect_name: The sqlglot dialect of the database.
        sources: The pod's tables the query reads, each a source of that database.
        columns: Each such table's columns (ignored ones already left out).

    Raises:
        QueryExecutionError: The query cannot be written in the database's dialect.
    """
    dialect = _PUSHDOWN_DIALECTS.get(dialect_name) or Dialect.get_or_raise(dialect_name)
    tree = checked.tree.copy()
    references = table_references(tree, sources)
    _rename_ctes(tree, [ref.node for ref in references if ref.is_cte], checked.sql)
    relations: dict[str, str] = {}
    for ref in references:
        if ref.is_cte:
            continue
        # The relation's own SQL is spliced in after translation, in place of a name
        # that cannot occur in the query, so that sqlglot never rewrites it.
        placeholder = f"podium_relation_{uuid.uuid4().hex}"
        source = sources[ref.name]
        relations[placeholder] = source.relation_sql()
        select = exp.select(*_projection(source, columns[ref.name])).from_(
            exp.Table(
                this=exp.to_identifier(placeholder),
                alias=exp.TableAlias(this=exp.to_identifier("podium_source")),
            )
        )
        ref.node.replace(_subquery(ref, select, checked.sql))
    try:
        sql = tree.sql(
            dialect=dialect, identify=True, comments=False, unsupported_level=ErrorLevel.RAISE
        )
    except SqlglotError as exc:
        raise QueryExecutionError(
            f"Query cannot be translated to the {dialect_name} SQL of the database behind "
            f"its tables: {exc}. Statement: {one_line(checked.sql)}"
        ) from exc
    for placeholder, relation in relations.items():
        quoted = exp.to_identifier(placeholder, quoted=True).sql(dialect=dialect)
        if sql.count(quoted) != 1:  # pragma: no cover -- a uuid cannot collide
            raise QueryExecutionError(
                f"Query could not be rewritten for push-down: {one_line(checked.sql)}"
            )
        sql = sql.replace(quoted, relation)
    return sql


def _subquery(ref: TableReference, select: exp.Select, sql: str) -> exp.Subquery:
    """``(<select>) AS <the reference's alias>``, or an error for what cannot be kept."""
    extra = sorted(k for k, v in ref.node.args.items() if v and k not in _PUSHDOWN_TABLE_ARGS)
    if extra:
        raise QueryExecutionError(
            f"Query cannot be pushed down to the database: {', '.join(extra)} on table "
            f"{quote_identifier(ref.name)} has no equivalent there. Remove it and filter "
            f"with WHERE instead. Statement: {one_line(sql)}"
        )
    alias = ref.node.args.get("alias") or exp.TableAlias(
        this=exp.to_identifier(ref.name, quoted=True)
    )
    return exp.Subquery(this=select, alias=alias.copy())


def _projection(source: DatabaseSource, columns: list[str]) -> list[exp.Expr]:
    """The kept columns, each with its modifier's prefix and suffix added as text."""
    projection: list[exp.Expr] = []
    for column in columns:
        ident = exp.column(column, quoted=True)
        modifier = source.modifiers.get(column)
        if modifier is None:
            projection.append(ident)
            continue
        text = exp.DPipe(
            this=exp.DPipe(
                this=exp.Literal.string(modifier.prefix),
                expression=exp.cast(ident, exp.DataType.Type.TEXT),
            ),
            expression=exp.Literal.string(modifier.suffix),
        )
        projection.append(exp.alias_(text, column, quoted=True))
    return projection


def _rename_ctes(tree: exp.Expr, references: list[exp.Table], sql: str) -> None:
    """Give every CTE in ``tree`` a fresh unique name, and each reference to it that name.

    The pod's relations are spliced into the pushed-down SQL as text, inside the scope of
    the modeller's ``WITH``: a CTE named like a table the owner's SQL reads (the table of
    a ``table:`` source, any table of a ``query:`` one) would stand in for it, defeating
    the owner's filters. After this no name the modeller defined can match one there. A
    reference without an alias keeps its old name as alias, for column qualifiers.
    """
    ctes = list(tree.find_all(exp.CTE))
    if not ctes:
        return
    token = uuid.uuid4().hex[:12]
    names = {id(cte): f"podium_cte_{n}_{token}" for n, cte in enumerate(ctes)}
    targets = [(node, _defining_cte(node)) for node in references]  # before any renaming
    for node, cte in targets:
        if cte is None:  # pragma: no cover -- table_references found a CTE of this name
            raise QueryExecutionError(
                f"Query could not be rewritten for push-down: no CTE defines "
                f"{quote_identifier(node.name)}. Statement: {one_line(sql)}"
            )
        if not node.alias:
            node.set("alias", exp.TableAlias(this=node.this.copy()))
        node.set("this", exp.to_identifier(names[id(cte)], quoted=True))
    for cte in ctes:
        cte.args["alias"].set("this", exp.to_identifier(names[id(cte)], quoted=True))


def _defining_cte(node: exp.Table) -> exp.CTE | None:
    """The CTE that ``node``'s name refers to, under the scoping of ``table_references``.

    The innermost visible CTE of that name wins: in a CTE's own body, the CTEs before it in
    its ``WITH`` (and itself when ``RECURSIVE``); elsewhere every CTE of an enclosing
    query's ``WITH``.
    """
    name = node.name
    child: exp.Expr = node
    parent = node.parent
    while parent is not None:
        candidates: list[exp.CTE] = []
        if isinstance(parent, exp.With):
            if isinstance(child, exp.CTE):
                position = next(i for i, cte in enumerate(parent.expressions) if cte is child)
                candidates = parent.expressions[:position]
                if parent.args.get("recursive"):
                    candidates = [*candidates, child]
        else:
            with_ = parent.args.get("with_")
            if isinstance(with_, exp.With) and child is not with_:
                candidates = with_.expressions
        for cte in reversed(candidates):
            if cte.alias == name:
                return cte
        child, parent = parent, parent.parent
    return None


def refuse_server_functions(checked: ValidatedQuery, dialect: str) -> None:
    """Refuse functions that would tell the modeller which server answers a push-down.

    The database's version, user, role, database, schema, address or session are the pod
    owner's business; in DuckDB the same functions describe only Podium's own engine.

    Raises:
        ForbiddenQueryError: The query calls such a function.
    """
    for node in checked.tree.find_all(exp.Func):
        if isinstance(node, exp.Anonymous):
            names = {node.name.lower()}
        else:
            names = {name.lower() for name in node.sql_names()}
        current = type(node).__name__.startswith("Current")
        if (current and not isinstance(node, _TIME_FUNCTIONS)) or names & _SERVER_FUNCTIONS:
            shown = one_line(node.sql(dialect=PodiumDuckDB), _SHOWN_CALL_CHARS)
            raise ForbiddenQueryError(
                f"Query refused: {shown} reveals the {dialect} server, database or user "
                f"behind these tables, which the pod does not share. Remove it. "
                f"Statement: {one_line(checked.sql)}"
            )
