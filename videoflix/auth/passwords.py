"""Password rules (as Django's default validators) and hashing."""
import re
from difflib import SequenceMatcher
from functools import lru_cache

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 8
SIMILARITY = 0.7


@lru_cache(maxsize=1)
def common_passwords():
    """The 30,000 most common passwords, from the list zxcvbn ships."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problems(password, email=""):
    """Sentences describing why `password` is weak; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"This password is too short. It must contain at least {MIN_LENGTH} characters.")
    if password.isdigit():
        problems.append("This password is entirely numeric.")
    if password.lower().strip() in common_passwords():
        problems.append("This password is too common.")
    if email and _too_similar(password, email):
        problems.append("The password is too similar to the email.")
    return problems


def _too_similar(password, email):
    lowered = password.lower()
    parts = {email.lower(), *re.split(r"\W+", email.lower())}
    for part in filter(None, parts):
        matcher = SequenceMatcher(a=lowered, b=part)
        if matcher.quick_ratio() >= SIMILARITY and matcher.ratio() >= SIMILARITY:
            return True
    return False


def hash_password(password):
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


@lru_cache(maxsize=4)
def _dummy_hash(method):
    return generate_password_hash("not-a-real-password-but-the-same-cost", method=method)


def verify_password(password_hash, password):
    """Check a password; with no hash (unknown account) spend the same time and return False."""
    if password_hash is None:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)
        return False
    return check_password_hash(password_hash, password)
