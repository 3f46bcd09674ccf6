"""Connections to the services the app depends on and how it treats them when they fail:
`redis_conn` (the Redis client, its bounded pool and guarded queue storage) and `circuit` (the
breaker it shares with the bucket's store: a service that failed is not asked again for a while).
"""
