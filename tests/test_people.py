"""Passwords are stored hashed with scrypt unless the installation asks otherwise."""
from formflow.factory import create_app
from formflow.people.models import User


def test_passwords_are_hashed_with_scrypt_by_default(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "QUEUE_URL": f"sqlite:///{tmp_path}/q.db",
                      "SECRET_KEY": "t"}, instance_path=str(tmp_path))
    with app.app_context():
        user = User(username="wang")
        user.set_password("correct-horse-9")
    assert user.password_hash.startswith("scrypt:") and "correct-horse-9" not in user.password_hash
    assert user.check_password("correct-horse-9") and not user.check_password("correct-horse-8")


def test_the_suite_uses_a_cheap_hash_that_still_verifies(app):
    with app.app_context():
        user = User(username="li")
        user.set_password("correct-horse-9")
    assert user.password_hash.startswith("pbkdf2:sha256:1$")
    assert user.check_password("correct-horse-9") and not user.check_password("x")
