"""Keys and predicates for Flask-Limiter."""
from flask import request


def client_ip():
    """The client's address; behind a proxy, ProxyFix (PROXY_COUNT) makes remote_addr the real one."""
    return request.remote_addr or "unknown"


def account_key():
    """The e-mail a login is for, so failures against one account are limited from any address."""
    data = request.get_json(silent=True)
    email = data.get("email") if isinstance(data, dict) else None
    if isinstance(email, str) and email.strip():
        return "account:" + email.strip().lower()[:254]
    return "account-ip:" + client_ip()


def failed(response):
    """Deduct from a failed-login budget only when the login failed."""
    return response.status_code in (400, 401, 403)


def always(response):
    return True
