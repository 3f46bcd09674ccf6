from sqlalchemy import select

from tests.fixtures.accounts import STRONG
from videoflix.auth.cli import seed_demo_accounts
from videoflix.auth.models import User
from videoflix.auth.passwords import verify_password
from videoflix.extensions import db


def user(app, email):
    with app.app_context():
        return db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()


def test_create_user_with_password_and_flags(app, runner):
    result = runner.invoke(args=["create-user", "Staff@Example.com", "--password", STRONG, "--staff"])
    assert result.exit_code == 0, result.output
    assert "Created staff user" in result.output
    created = user(app, "staff@example.com")
    assert created.is_staff and created.is_active
    with app.app_context():
        assert verify_password(created.password_hash, STRONG)

    result = runner.invoke(args=["create-user", "later@example.com", "--password", STRONG, "--inactive"])
    assert result.exit_code == 0
    assert not user(app, "later@example.com").is_active


def test_create_user_prompts_for_the_password(app, runner):
    result = runner.invoke(args=["create-user", "prompted@example.com"], input=f"{STRONG}\n{STRONG}\n")
    assert result.exit_code == 0, result.output
    assert STRONG not in result.output  # hidden input
    with app.app_context():
        assert verify_password(user(app, "prompted@example.com").password_hash, STRONG)


def test_create_user_refuses_weak_password_taken_email_and_bad_address(app, runner):
    weak = runner.invoke(args=["create-user", "weak@example.com", "--password", "password"])
    assert weak.exit_code != 0
    assert "too common" in weak.output
    assert user(app, "weak@example.com") is None

    runner.invoke(args=["create-user", "taken@example.com", "--password", STRONG])
    again = runner.invoke(args=["create-user", "TAKEN@example.com", "--password", STRONG])
    assert again.exit_code != 0
    assert "already exists" in again.output
    assert again.exception is None or isinstance(again.exception, SystemExit)

    bad = runner.invoke(args=["create-user", "not-an-address", "--password", STRONG])
    assert bad.exit_code != 0 and "valid email" in bad.output


def test_create_user_normalises_like_registration(app, runner):
    result = runner.invoke(args=["create-user", "Ｅｖａ@Bücher.Example", "--password", STRONG])
    assert result.exit_code == 0, result.output
    assert "<eva@xn--bcher-kva.example>" in result.output
    again = runner.invoke(args=["create-user", "eva@BÜCHER.example", "--password", STRONG])
    assert again.exit_code != 0 and "already exists" in again.output
    non_ascii = runner.invoke(args=["create-user", "jörg@example.com", "--password", STRONG])
    assert non_ascii.exit_code != 0 and "valid email" in non_ascii.output
    with app.app_context():
        assert db.session.scalars(select(User.email)).all() == ["eva@xn--bcher-kva.example"]


def test_demo_accounts_only_on_an_empty_development_database(app):
    with app.app_context():
        assert seed_demo_accounts() == []  # testing profile: off
        app.config["SEED_DEMO_USERS"] = True
        seeded = seed_demo_accounts()
        assert ("test@example.com", "testpassword", False) in seeded
        assert any(staff for _, _, staff in seeded)
        test_user = db.session.execute(select(User).where(User.email == "test@example.com")).scalar_one()
        assert test_user.is_active and verify_password(test_user.password_hash, "testpassword")
        assert seed_demo_accounts() == []  # not empty any more


def test_production_profile_never_seeds():
    from videoflix.config import DevelopmentConfig, ProductionConfig

    assert ProductionConfig.SEED_DEMO_USERS is False
    assert DevelopmentConfig.SEED_DEMO_USERS is True
