"""An unreachable database: requests that need it answer 503 JSON with Retry-After, never 500."""
from videoflix import create_app

UNREACHABLE = "postgresql+psycopg2://nobody@127.0.0.1:1/none"  # port 1: the connection is refused


def test_an_unreachable_database_answers_503_with_retry_after(app_config):
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": UNREACHABLE, "REDIS_URL": None})
    client = app.test_client()
    answers = [
        client.post("/api/login/", json={"email": "user@example.com", "password": "whatever-it-is"}),
        client.post("/api/register/", json={"email": "new@example.com", "password": "long-enough-passphrase",
                                            "confirmed_password": "long-enough-passphrase"}),
    ]
    for response in answers:
        assert response.status_code == 503, response.get_json()
        assert response.get_json() == {"detail": "Service temporarily unavailable. Please try again later."}
        assert int(response.headers["Retry-After"]) >= 1
