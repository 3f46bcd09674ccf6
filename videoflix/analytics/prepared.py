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
    """(the SQL to PREPARE, with $n for the caller's parameters and the statement's own constants
    written in; the EXECUTE's SQL with their names, in $n order)."""
    compiled = statement.compile(dialect=dialect)
    if "%%" in compiled.string:
        raise ValueError("a literal % in a prepared statement is not supported")
    names, types, constants = [], [], {}
    for name in dict.fromkeys(PARAMETER.findall(compiled.string)):
        bind = compiled.binds[name]
        sql_type = bind.type.compile(dialect=dialect)
        literal = bind.type.literal_processor(dialect) if bind.value is not None else None
        if literal is not None:  # a constant of the statement (literal(1), a CASE's 0.5)
            constants[name] = f"CAST({literal(bind.effective_value)} AS {sql_type})"
        else:
            names.append(name)
            types.append(sql_type)
    number = {name: n for n, name in enumerate(names, 1)}
    sql = PARAMETER.sub(lambda match: constants.get(match[1]) or f"${number[match[1]]}", compiled.string)
    return f"({', '.join(types)}) AS {sql}", f"({', '.join(f'%({n})s' for n in names)})", tuple(names)


def execute(connection, name, statement, params):
    """The result of `statement` (a SQLAlchemy statement built once: it keys the cache) with
    `params` (every parameter without a value of its own) on a PostgreSQL `connection` (a
    Connection, in a transaction or in autocommit), as the prepared statement `name`. Values are
    passed as they are: no type's bind processing."""
    definition, arguments, names = _prepared(statement, connection.dialect)
    record = connection.connection  # the pool's connection: its .info lives as long as the connection
    if name not in record.info:
        connection.exec_driver_sql(f"PREPARE {name} {definition}")
        record.info[name] = True
    return connection.exec_driver_sql(f"EXECUTE {name} {arguments}", {n: params[n] for n in names})
