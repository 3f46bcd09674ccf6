"""Server-side prepared statements on PostgreSQL, for the statements run hundreds of times a
second (a playback beacon: videoflix.analytics.beacons).

psycopg2 sends every statement as text, and PostgreSQL parses and plans it again each time: for
a beacon's statement (two upserts in data-modifying CTEs) planning took longer than running it.
`execute` PREPAREs a statement once per database connection (the pool's record of the connection
remembers it, and forgets it with the connection) and EXECUTEs it after that, so PostgreSQL
parses it once and, after its first few runs, keeps one generic plan.
"""
import functools
import re

PARAMETER = re.compile(r"%\((\w+)\)s")  # psycopg2's pyformat, as SQLAlchemy's compiler renders it


@functools.cache
def _prepared(statement, dialect):
    """(compiled statement, parameter names in $n order, the SQL with $n, their SQL types)."""
    compiled = statement.compile(dialect=dialect)
    if "%%" in compiled.string:
        raise ValueError("a literal % in a prepared statement is not supported")
    names = list(dict.fromkeys(PARAMETER.findall(compiled.string)))
    number = {name: n for n, name in enumerate(names, 1)}
    sql = PARAMETER.sub(lambda match: f"${number[match[1]]}", compiled.string)
    types = [compiled.binds[name].type.compile(dialect=dialect) for name in names]
    return compiled, names, sql, types


def execute(connection, name, statement, params):
    """The result of `statement` (a SQLAlchemy statement built once: it keys the cache) with
    `params` on a PostgreSQL `connection` (a Connection, in a transaction or in autocommit), as the
    prepared statement `name`. Values are passed as they are: no type's bind processing."""
    compiled, names, sql, types = _prepared(statement, connection.dialect)
    record = connection.connection  # the pool's connection: its .info lives as long as the connection
    if name not in record.info:
        connection.exec_driver_sql(f"PREPARE {name} ({', '.join(types)}) AS {sql}")
        record.info[name] = True
    values = compiled.construct_params(params)
    return connection.exec_driver_sql(f"EXECUTE {name} ({', '.join(f'%({n})s' for n in names)})",
                                      {n: values[n] for n in names})
