"""`flask create-user` and the demo accounts of the embedded default."""
import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from videoflix.auth import users
from videoflix.auth.models import User
from videoflix.auth.passwords import password_problems
from videoflix.auth.schemas import PASSWORD_MAX
from videoflix.extensions import db

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
    try:
        email = users.normalize_email(email)
    except users.InvalidEmail as error:
        raise click.BadParameter(str(error), param_hint="EMAIL") from None
    if users.find_user(email) is not None:
        raise click.ClickException(f"A user with the e-mail {email} already exists.")
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) > PASSWORD_MAX:
        raise click.ClickException(f"The password is longer than {PASSWORD_MAX} characters.")
    if problems := password_problems(password, email):
        raise click.ClickException("Weak password: " + " ".join(problems))
    try:
        user = users.create_user(email, password, active=not inactive, staff=staff)
    except users.EmailTaken:
        raise click.ClickException(f"A user with the e-mail {email} already exists.") from None
    db.session.commit()
    click.echo(f"Created {'staff ' if staff else ''}user {user.id} <{user.email}>{' (inactive)' if inactive else ''}.")


def seed_demo_accounts():
    """On an empty database of the embedded default, add the demo accounts; returns what was added.

    Never runs in production (SEED_DEMO_USERS is off there). The demo passwords are weak on purpose
    and bypass the password rules.
    """
    if not current_app.config["SEED_DEMO_USERS"] or db.session.scalar(select(func.count(User.id))):
        return []
    created = [
        (email, password, users.create_user(email, password, active=True, staff=staff))
        for email, password, staff in DEMO_ACCOUNTS
    ]
    db.session.commit()
    return [(email, password, user.is_staff) for email, password, user in created]
