"""The videos API (see "Videos" in API.md)."""
from flask import Blueprint

bp = Blueprint("videos", __name__, url_prefix="/api/video")
