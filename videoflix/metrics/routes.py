"""GET /metrics: for the configured addresses (METRICS_ALLOW, the client's address after
PROXY_COUNT), or anyone with `Authorization: Bearer <METRICS_TOKEN>`. Others get a 404, as if
there were nothing here; a wrong token is a 401."""
import hmac
import ipaddress
import logging

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from videoflix.auth.credentials import bearer_token
from videoflix.errors import APIError
from videoflix.metrics.collect import exposition

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)
WRONG_TOKEN = "Invalid metrics token."


def allowed_networks(config):
    """METRICS_ALLOW as networks; an entry that is neither an address nor a network is logged and
    left out (it never allows anyone)."""
    networks = []
    for entry in config["METRICS_ALLOW"]:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            log.warning("METRICS_ALLOW: %r is not an address or network; ignored", entry)
    return networks


def may_read_metrics():
    """True for the configured token or an allowed address; APIError 401 for a wrong token."""
    config = current_app.config
    token = bearer_token(request.headers.get("Authorization", ""), "Bearer")
    if token:
        expected = config["METRICS_TOKEN"]
        if expected and hmac.compare_digest(token.encode(), expected.encode()):
            return True
        raise APIError(401, WRONG_TOKEN)
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in allowed_networks(config))


@bp.get("/metrics", strict_slashes=True)
def metrics():
    if not may_read_metrics():
        raise APIError(404)
    return Response(exposition(current_app._get_current_object()), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})
