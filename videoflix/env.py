"""Typed values from the environment, and the number of cores this process may use.

Standard library only, and no import of the rest of the package: gunicorn.conf.py loads this file
by its path in the gunicorn master, which must not import the app (its workers load it, and a HUP
reload starts them on new code).
"""
import os


def env_str(name, default=None):
    """The variable's value without surrounding blanks; `default` when it is unset or blank."""
    value = os.environ.get(name, "").strip()
    return value if value else default


def env_int(name, default):
    """The variable as an int; `default` when it is unset or blank. Raises ValueError otherwise."""
    value = env_str(name)
    return int(value) if value is not None else default


def env_float(name, default):
    """The variable as a float; `default` when it is unset or blank. Raises ValueError otherwise."""
    value = env_str(name)
    return float(value) if value is not None else default


def env_bool(name, default=False):
    """1/true/yes/on (any case) is True, anything else False; `default` when unset or blank."""
    value = env_str(name)
    return default if value is None else value.lower() in {"1", "true", "yes", "on"}


def cpu_cores():
    """The cores this process may run on (its CPU affinity, which a container's cpuset narrows),
    at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
