"""Helpers shared by the accounts tests."""
import re
from urllib.parse import parse_qs, urlsplit

from videoflix.auth.links import encode_uid

STRONG = "Blue-Kettle-Morning-42"


def register(client, email="new@example.com", password=STRONG, confirmed=None, **extra):
    body = {"email": email, "password": password, "confirmed_password": confirmed or password, **extra}
    return client.post("/api/register/", json=body)


def link_from(message):
    """The (uid, token) of the first front-end link in a message's text part."""
    url = re.search(r"https?://\S+", message.body).group(0)
    query = parse_qs(urlsplit(url).query)
    return url, query["uid"][0], query["token"][0]


def cookie(response, name):
    """The Set-Cookie header for `name`, parsed into a dict of lower-cased attributes."""
    for header in response.headers.getlist("Set-Cookie"):
        key, _, rest = header.partition("=")
        if key == name:
            value, *attrs = rest.split("; ")
            parsed = {"value": value}
            for attr in attrs:
                k, _, v = attr.partition("=")
                parsed[k.lower()] = v or True
            return parsed
    return None


__all__ = ["STRONG", "cookie", "encode_uid", "link_from", "register"]
