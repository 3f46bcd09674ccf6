"""`flask create-user` and the demo accounts of the embedded default."""
import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from videoflix.auth.models import User
from videoflix.auth.passwords import password_problems
from videoflix.auth.schemas import PASSWORD_MAX, EmailField
from videoflix.extensions import db
from videoflix.validation import ValidationError

DEMO_ACCOUNTS = (
    ("admin@example.com", "adminpassword", True),
    ("test@example.com", "testpassword", False),
)


@click.command("create-user")
@click.argument("email")
@click.option("--password", help="Prompted for (hidden, twice) when not given.")
@click.option("--staff", is_flag=True, help="May use the admin back office.")
@click.option("--inactive", is_flag=True, help="Create the account without activating it.")
@with_appcontext
def create_user_command(email, password, staff, inactive):
    """Create an account (active unless --inactive)."""
    from videoflix.auth.routes import create_user, find_user

    try:
        email = EmailField()._deserialize(email, "email", {})
    except ValidationError as error:
        raise click.BadParameter(" ".join(error.messages), param_hint="EMAIL") from None
    if find_user(email) is not None:
        raise click.ClickException(f"A user with the e-mail {email} already exists.")
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) > PASSWORD_MAX:
        raise click.ClickException(f"The password is longer than {PASSWORD_MAX} characters.")
    if problems := password_problems(password, email):
        raise click.ClickException("Weak password: " + " ".join(problems))
    try:
        user = create_user(email, password, active=not inactive, staff=staff)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise click.ClickException(f"A user with the e-mail {email} already exists.") from None
    click.echo(f"Created {'staff ' if staff else ''}user {user.id} <{user.email}>{' (inactive)' if inactive else ''}.")


def seed_demo_accounts():
    """On an empty database of the embedded default, add the demo accounts; returns what was added.

    Never runs in production (SEED_DEMO_USERS is off there). The demo passwords are weak on purpose
    and bypass the password rules.
    """
    from videoflix.auth.routes import create_user

    if not current_app.config["SEED_DEMO_USERS"] or db.session.scalar(select(func.count(User.id))):
        return []
    created = [
        (email, password, create_user(email, password, active=True, staff=staff))
        for email, password, staff in DEMO_ACCOUNTS
    ]
    db.session.commit()
    return [(email, password, user.is_staff) for email, password, user in created]
