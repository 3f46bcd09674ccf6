"""Which spellings of an e-mail address are one account: the one normalisation that registration,
sign-in, password reset, the CLI and the rate limits all use."""
import unicodedata

from email_validator import EmailNotValidError, validate_email

EMAIL_MAX = 254


class InvalidEmail(ValueError):
    """An address that cannot be an account's; the message is for the person who typed it."""


def normalize_email(value):
    """The one spelling under which an address is stored and looked up.

    NFKC folds look-alike characters (full-width letters, ligatures) to their plain form; the
    domain is IDNA-encoded (ASCII) and everything lower-cased. Local parts must be ASCII: mail
    servers without SMTPUTF8 could never deliver the activation e-mail. Raises InvalidEmail.
    """
    value = unicodedata.normalize("NFKC", value).strip()
    if not value:
        raise InvalidEmail("This field may not be blank.")
    if len(value) > EMAIL_MAX:
        raise InvalidEmail(f"Ensure this field has no more than {EMAIL_MAX} characters.")
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise InvalidEmail("Enter a valid email address.") from None
    normalized = result.ascii_email.lower()
    if len(normalized) > EMAIL_MAX:  # IDNA can lengthen the domain
        raise InvalidEmail(f"Ensure this field has no more than {EMAIL_MAX} characters.")
    return normalized


def lookup_form(value):
    """`value` as normalize_email spells it; any other string folded the same simple way (it
    matches no account created since normalisation, but still one stored before)."""
    try:
        return normalize_email(value)
    except InvalidEmail:
        return unicodedata.normalize("NFKC", value).strip().lower()


def domain_of(value):
    """The normalised domain of an address (also of one normalize_email refuses), for counting."""
    return lookup_form(value).rpartition("@")[2]
