"""Keys and limits (Flask-Limiter) of the doors attackers knock on: sign-in, register, reset,
and the catalogue's search (per account: charge()).

Sign-in (see README, "Security notes"): failures are limited per client and per (account, client)
tightly; every attempt on an account counts against a looser per-account budget. Once that budget
is spent, only a client without a recent failure on the account has its password checked (a few
times an hour): the owner still signs in from a fresh address while guesses from addresses that
already failed get 429 without a check. No one can lock an owner out by failing on purpose.
"""
import logging
import time
from contextlib import contextmanager

from flask import current_app, request
from flask_limiter.util import get_remote_address
from limits import parse_many
from werkzeug.exceptions import TooManyRequests

from videoflix.auth.addresses import EMAIL_MAX, domain_of
from videoflix.extensions import limiter

log = logging.getLogger(__name__)


def client_ip():
    """The client's address; behind a proxy, ProxyFix (PROXY_COUNT) makes remote_addr the real one."""
    return get_remote_address()


def email_domain():
    """The normalised domain of the e-mail in a JSON body, else the client's address:
    registrations are also counted per domain, whoever sends them."""
    data = request.get_json(silent=True)
    email = data.get("email") if isinstance(data, dict) else None
    if isinstance(email, str) and "@" in email:
        return "domain:" + domain_of(email[:EMAIL_MAX])
    return "domain-ip:" + client_ip()


def failed(response):
    """Deduct from a failed-login budget only when the login failed."""
    return response.status_code in (400, 401, 403)


def created(response):
    return response.status_code == 201


def login_limits(methods=None):
    """The per-client failure limit of every sign-in door (POST /api/login/, /admin/login/), on
    `methods` only; one scope, so a second door gives no extra budget. The per-account limits
    are applied by the credentials check itself (sign_in_attempt)."""
    return limiter.shared_limit(
        _configured("LOGIN_FAILURES_PER_CLIENT"), "login-client", key_func=client_ip, deduct_when=failed,
        methods=methods,
    )


def register_limits(view):
    """Registrations per client (a burst and a daily ceiling, so a classroom behind one NAT can
    sign up) and accounts created per e-mail domain, from any client."""
    view = limiter.limit(_configured("REGISTER_LIMIT_PER_DOMAIN"), key_func=email_domain, scope="register-domain",
                         deduct_when=created)(view)
    return limiter.limit(_configured("REGISTER_LIMIT"), key_func=client_ip, scope="register")(view)


def limit(config_key, **kwargs):
    """limiter.limit() with the limit read from the app's config (see _configured)."""
    return limiter.limit(_configured(config_key), **kwargs)


def charge(config_key, *identifiers):
    """Count one use of the limits in `config_key` (e.g. SEARCH_LIMIT) by `identifiers` (e.g.
    ("search", user id)): TooManyRequests (429 with Retry-After) once one of its windows is full.
    For limits keyed by something only the view knows, such as the signed-in account."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    items = _limits(config_key)
    if not _hit(items, identifiers):
        raise _too_many(items, identifiers)


def _configured(config_key):
    """The limit string from the current app's config, read per request: tests and deployments
    change it without re-importing the routes."""
    return lambda: current_app.config[config_key]


@contextmanager
def sign_in_attempt(account, refused):
    """Run one credentials check for `account` (its normalised e-mail) under the account limits.

    The body raises `refused` (an exception class) when the credentials are wrong; that counts as
    a failure of this client on this account. Raises TooManyRequests before the body when this
    client failed too often on the account, or the account's budget is spent and this client
    failed recently (or used its tries under lockout); and instead of `refused` when the budget
    is spent. The budget is charged before the check, so concurrent guesses cannot overrun it.
    """
    client = client_ip()
    pair = ("login-account-client", account, client)
    failures = _limits("LOGIN_FAILURES_PER_ACCOUNT_CLIENT")
    _refuse_when_spent(failures, pair)
    locked = not _hit(_limits("LOGIN_ATTEMPTS_PER_ACCOUNT"), ("login-account", account))
    if locked:
        if not _clean(failures, pair):
            raise _too_many(failures, pair)
        tries = _limits("LOGIN_LOCKED_ATTEMPTS_PER_CLIENT")
        if not _hit(tries, ("login-locked", account, client)):
            raise _too_many(tries, ("login-locked", account, client))
    try:
        yield
    except refused:
        _hit(failures, pair)
        if locked:
            raise _too_many(_limits("LOGIN_ATTEMPTS_PER_ACCOUNT"), ("login-account", account)) from None
        raise


def _limits(config_key):
    return parse_many(current_app.config[config_key])


def _ids(identifiers):
    return (current_app.config.get("RATELIMIT_KEY_PREFIX", ""), *identifiers)


def _storage_call(method, default, *args):
    """A call on the limiter's strategy; `default` when its storage fails (the request-level
    limits of Flask-Limiter still apply then, per its fallback settings)."""
    try:
        return method(*args)
    except Exception:  # a storage outage must not fail the sign-in
        log.warning("Rate limit storage unavailable; account limits skipped", exc_info=True)
        return default


def _hit(items, identifiers):
    """Count one attempt against every window of `items`; False when one of them was full."""
    counted = [_storage_call(limiter.limiter.hit, True, item, *_ids(identifiers)) for item in items]  # each one
    return all(counted)


def _clean(items, identifiers):
    """No use of `items` by `identifiers` in any current window."""
    for item in items:
        stats = _storage_call(limiter.limiter.get_window_stats, None, item, *_ids(identifiers))
        if stats is not None and stats.remaining < item.amount:
            return False
    return True


def _refuse_when_spent(items, identifiers):
    for item in items:
        if not _storage_call(limiter.limiter.test, True, item, *_ids(identifiers)):
            raise _too_many([item], identifiers)


def _too_many(items, identifiers):
    """429 for the first full window of `items` (else the first), with its Retry-After."""
    for item in items:
        stats = _storage_call(limiter.limiter.get_window_stats, None, item, *_ids(identifiers))
        if stats is not None and stats.remaining <= 0:
            return TooManyRequests(description=str(item), retry_after=max(1, int(stats.reset_time - time.time()) + 1))
    return TooManyRequests(description=str(items[0]), retry_after=items[0].get_expiry())
