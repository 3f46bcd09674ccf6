"""nginx passes tus requests through unbuffered, with a per-request body limit that fits a chunk
(tests/platform/test_deploy.py checks that both configs pass `nginx -t`)."""
import re

import pytest

from tests.platform.test_deploy import NGINX_DIR


@pytest.mark.parametrize("config", ["videoflix.conf", "compose.conf.template"])
def test_nginx_streams_tus_chunks_to_the_app(config):
    text = (NGINX_DIR / config).read_text()
    block = re.search(r"location /api/uploads/ \{(.*?)\n    \}", text, re.S).group(1)
    directives = {line.strip().rstrip(";") for line in block.splitlines() if line.strip()}
    assert {"client_max_body_size 64m", "proxy_request_buffering off", "proxy_pass http://videoflix_app",
            "include /etc/nginx/videoflix/proxy-app.conf"} <= directives
