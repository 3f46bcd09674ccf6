"""The app's Redis clients: one per app, a bounded pool whose connections always come back, and a
circuit that stops asking a dead Redis and closes again once it answers. Against a redis-server of
the test's own."""
import threading

import pytest
import redis

from tests.fixtures.redis_server import OwnRedis, needs_redis_server, wait_until
from videoflix import create_app
from videoflix.connections.redis_conn import CircuitOpen
from videoflix.extensions import redis_client
from videoflix.tasks import queue_of

pytestmark = needs_redis_server
THREADS, CONNECTIONS = 24, 4


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def redis_app(url, **overrides):
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": url,
                       "HUEY_IMMEDIATE": False, "REDIS_MAX_CONNECTIONS": CONNECTIONS, "REDIS_POOL_TIMEOUT": 30,
                       "REDIS_RETRY_AFTER": 1, **overrides})


def test_many_threads_share_a_bounded_pool_and_return_every_connection(own_redis):
    app = redis_app(own_redis.url)
    client = redis_client(app)
    assert redis_client(app) is client and redis_client(redis_app(own_redis.url)) is not client
    errors = []

    def work(n):
        try:
            for i in range(40):
                client.set(f"pool-test:{n}", i)
                assert client.mget(f"pool-test:{n}", "pool-test:none") == [str(i), None]
        except Exception as error:  # noqa: BLE001 - collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    # Never more connections than the bound, and every one is back in the pool.
    with redis.Redis.from_url(own_redis.url) as admin:
        assert len(admin.client_list()) <= CONNECTIONS + 1  # + the one asking
    assert client.connection_pool.pool.qsize() == CONNECTIONS
    assert queue_of(app).storage.pool.max_connections == CONNECTIONS  # the queue's pool is bounded too


def test_the_circuit_stops_asking_a_dead_redis_and_closes_when_it_is_back(own_redis):
    app = redis_app(own_redis.url)
    client = redis_client(app)
    assert client.ping()

    own_redis.stop()
    with pytest.raises(redis.ConnectionError) as first:
        client.get("k")
    assert not isinstance(first.value, CircuitOpen)  # it really asked
    with pytest.raises(CircuitOpen) as second:
        client.get("k")  # not asked again: the circuit is open
    assert second.value.retry_after >= 1
    with pytest.raises(CircuitOpen):  # the queues' storage shares the app's circuit
        queue_of(app).pending_count()

    own_redis.start()  # the same port again

    def answers():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    wait_until(answers, "the circuit to close")
    assert client.set("k", "v") and client.get("k") == "v"
    assert queue_of(app).pending_count() == 0
