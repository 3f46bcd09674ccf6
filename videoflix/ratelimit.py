"""Keys, predicates and the shared sign-in limits for Flask-Limiter."""
from flask import current_app, request

EMAIL_KEY_LENGTH = 254


def client_ip():
    """The client's address; behind a proxy, ProxyFix (PROXY_COUNT) makes remote_addr the real one."""
    return request.remote_addr or "unknown"


def account_key():
    """The e-mail a sign-in is for (JSON body of the API, form of the admin), so attempts against
    one account are limited from any address; the client's address when there is none."""
    data = request.get_json(silent=True)
    email = data.get("email") if isinstance(data, dict) else request.form.get("email")
    if isinstance(email, str) and email.strip():
        return "account:" + email.strip().lower()[:EMAIL_KEY_LENGTH]
    return "account-ip:" + client_ip()


def failed(response):
    """Deduct from a failed-login budget only when the login failed."""
    return response.status_code in (400, 401, 403)


def login_limits(methods=None):
    """The limits of every sign-in door (POST /api/login/ and /admin/login/), on `methods` only.

    Both doors use the same scopes, so their counters are shared and a second door gives no extra
    budget. Failures are limited per client and per account. They are only deducted once the
    view has answered, so concurrent guesses could all pass the failure check first: the ceiling
    on every attempt per account (counted before the view runs) bounds such a burst.
    """
    limits = (
        ("LOGIN_FAILURES_PER_CLIENT", client_ip, failed, "login-client"),
        ("LOGIN_FAILURES_PER_ACCOUNT", account_key, failed, "login-account"),
        ("LOGIN_ATTEMPTS_PER_ACCOUNT", account_key, None, "login-account-ceiling"),
    )

    def decorate(view):
        from videoflix.extensions import limiter  # extensions imports this module

        for config_key, key_func, deduct_when, scope in reversed(limits):
            view = limiter.shared_limit(
                _configured(config_key), scope, key_func=key_func, deduct_when=deduct_when, methods=methods
            )(view)
        return view

    return decorate


def limit(config_key, **kwargs):
    """limiter.limit() with the limit read from the app's config (see _configured)."""
    from videoflix.extensions import limiter  # extensions imports this module

    return limiter.limit(_configured(config_key), **kwargs)


def _configured(config_key):
    """The limit string from the current app's config, read per request: tests and deployments
    change it without re-importing the routes."""
    return lambda: current_app.config[config_key]
