"""Record validation through JSON Schema, worded for people."""
import pytest
from flask_babel import force_locale

from formflow.forms import catalog, validation


@pytest.fixture
def lead_version(app, cardealer):
    with app.test_request_context():
        yield catalog.current_version(catalog.get_form("lead"))


BASE = {"customer_name": "王", "phone": "13812345678", "source_channel": "showroom", "status": "new"}


@pytest.mark.parametrize("phone,ok", [
    ("13812345678", True), ("19912345678", True), ("+86 138 1234 5678", True),
    ("12345678901", False), ("1381234567", False), ("138123456789", False), ("02112345678", False),
    ("abcdefghijk", False), ("+1 415 555 2671", False),
])
def test_mainland_mobile_numbers(lead_version, phone, ok):
    errors = validation.errors_of(lead_version, {**BASE, "phone": phone})
    assert ("/phone" not in errors) is ok


def test_messages_follow_the_locale(lead_version):
    data = {"phone": "123", "source_channel": "nowhere", "status": "new"}
    with force_locale("zh_CN"):
        zh = validation.errors_of(lead_version, data)
    with force_locale("en"):
        en = validation.errors_of(lead_version, data)
    assert zh["/customer_name"] == ["此项为必填项"]
    assert en["/customer_name"] == ["This field is required"]
    assert en["/phone"] == ["Enter a valid mainland China mobile number (11 digits)"]
    assert en["/source_channel"] == ["Not one of the allowed choices"]


def test_money_accepts_cents_but_not_fractions_of_them(app, cardealer):
    with app.test_request_context():
        v = catalog.current_version(catalog.get_form("defeat"))
        ok = validation.errors_of(v, {"competitor_price": 88000.07})
        bad = validation.errors_of(v, {"competitor_price": 88000.075})
    assert "/competitor_price" not in ok
    assert "/competitor_price" in bad


def test_dates_and_datetimes(lead_version):
    bad = validation.errors_of(lead_version, {**BASE, "status": "invited", "appointment_at": "2026-13-01T10:00"})
    assert "/appointment_at" in bad
    naive = validation.errors_of(lead_version, {**BASE, "status": "invited", "appointment_at": "2026-12-01T10:00:00"})
    assert "/appointment_at" in naive  # a time without its zone is ambiguous
    good = validation.errors_of(lead_version, {**BASE, "status": "invited", "appointment_at": "2026-12-01T10:00:00+08:00"})
    assert good == {}
