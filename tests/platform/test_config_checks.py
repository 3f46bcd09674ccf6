"""Settings that would only fail when the first video is transcoded are refused at start."""
import pytest

from videoflix import create_app


@pytest.mark.parametrize("overrides, sentence", [
    ({"PUBLISH": "sometimes"}, "PUBLISH must be one of playable, complete, not 'sometimes'."),
    ({"TRANSCODE_CHUNK_SECONDS": -5}, "TRANSCODE_CHUNK_SECONDS must be 0 (one part) or a number of seconds."),
])
def test_bad_transcode_settings_stop_the_app_with_a_sentence(tmp_path, overrides, sentence):
    with pytest.raises(RuntimeError) as refused:
        create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}", **overrides})
    assert str(refused.value) == sentence


@pytest.mark.parametrize("publish", ["playable", "complete"])
def test_both_publish_settings_are_accepted(tmp_path, publish):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}",
                      "PUBLISH": publish, "TRANSCODE_CHUNK_SECONDS": 0})
    assert app.config["PUBLISH"] == publish
