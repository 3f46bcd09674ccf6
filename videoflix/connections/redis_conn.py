"""Redis connections that fail fast: bounded pools, short timeouts, no retries, and a circuit.

Every Redis use of an app (revocation list, segment fast path, health check, task queues) goes
through the clients built here. When Redis is down or hung, a command fails within
REDIS_TIMEOUTS' socket timeout; the failure opens the app's circuit, and for REDIS_RETRY_AFTER
seconds every command fails at once with CircuitOpen (a redis ConnectionError) instead of waiting
again. Then one command is let through: when it succeeds the circuit closes, so a Redis that
comes back is used again without a restart. errors.py answers these errors with 503 + Retry-After.
"""
import redis
from huey.storage import RedisStorage

from videoflix.config import REDIS_NO_RETRY, REDIS_TIMEOUTS
from videoflix.connections import circuit


class CircuitOpen(redis.exceptions.ConnectionError):
    """Redis failed moments ago and is not asked again before `retry_after` seconds."""

    def __init__(self, retry_after):
        super().__init__(f"Redis failed recently; not asked again for {retry_after} s.")
        self.retry_after = retry_after


class Circuit(circuit.Circuit):
    """videoflix.connections.circuit's breaker, raising CircuitOpen (a redis ConnectionError) while open."""

    def __init__(self, seconds):
        super().__init__(seconds, CircuitOpen)


# The errors that mean "Redis is unreachable or too slow" (a pool without a free connection is a
# ConnectionError too): they open the circuit. Other errors (a wrong type, a script) are bugs.
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class GuardedRedis(redis.Redis):
    """A redis.Redis whose commands go through a Circuit."""

    def __init__(self, *args, circuit, **kwargs):
        super().__init__(*args, **kwargs)
        self.circuit = circuit

    def execute_command(self, *args, **options):
        self.circuit.check()
        try:
            result = super().execute_command(*args, **options)
        except UNAVAILABLE:
            self.circuit.trip()
            raise
        self.circuit.success()
        return result


class GuardedRedisStorage(RedisStorage):
    """Huey's Redis storage on a GuardedRedis (RedisStorage builds its client with
    `self.redis_client(connection_pool=...)`)."""

    def __init__(self, name, *, circuit, **kwargs):
        self.circuit = circuit
        super().__init__(name, **kwargs)

    def redis_client(self, connection_pool):
        return GuardedRedis(connection_pool=connection_pool, circuit=self.circuit)


def bounded_pool(url, config, **options):
    """A pool of at most REDIS_MAX_CONNECTIONS connections; a caller waits REDIS_POOL_TIMEOUT for
    a free one, then gets a ConnectionError. Short socket timeouts, no retries."""
    return redis.BlockingConnectionPool.from_url(
        url, max_connections=config["REDIS_MAX_CONNECTIONS"], timeout=config["REDIS_POOL_TIMEOUT"],
        **REDIS_TIMEOUTS, **REDIS_NO_RETRY, **options,
    )


def connect(app):
    """The app's client (strings decoded) and the circuit every client of the app shares."""
    circuit = Circuit(app.config["REDIS_RETRY_AFTER"])
    pool = bounded_pool(app.config["REDIS_URL"], app.config, decode_responses=True)
    return GuardedRedis(connection_pool=pool, circuit=circuit)


def retry_after(error, default):
    """The Retry-After of a 503 for `error`: the circuit's remaining time, else `default`."""
    return error.retry_after if isinstance(error, CircuitOpen) else default
