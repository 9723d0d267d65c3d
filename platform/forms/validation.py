"""Validating record data against its form version, with messages in the user's language.

JSON Schema is the only authority; this module runs it and words its findings.
"""
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import phonenumbers
from flask_babel import gettext as _
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError

from .definitions import effective_schema
from .pointers import pointer

FORMATS = FormatChecker(formats=())
# Existence checks for x-user and x-reference, set for the duration of one validation.
_lookups = ContextVar("formflow_lookups", default={})


@FORMATS.checks("cn-mobile", raises=(phonenumbers.NumberParseException,))
def _is_cn_mobile(value):
    if not isinstance(value, str):
        return True
    if not value.strip().lstrip("+").replace(" ", "").replace("-", "").isdigit():
        return False
    number = phonenumbers.parse(value, "CN")
    return (number.country_code == 86 and phonenumbers.is_valid_number(number)
            and phonenumbers.number_type(number) in (phonenumbers.PhoneNumberType.MOBILE,
                                                     phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE))


@FORMATS.checks("date", raises=ValueError)
def _is_date(value):
    return not isinstance(value, str) or (len(value) == 10 and bool(date.fromisoformat(value)))


@FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value):
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


def normalize_phone(value):
    """A mainland mobile number in its 11-digit national form, or the input unchanged."""
    try:
        number = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        return value
    if number.country_code == 86:
        return str(number.national_number)
    return value


def _x_user(validator, enabled, instance, schema):
    lookup = _lookups.get().get("user")
    if enabled and isinstance(instance, str) and lookup and not lookup(instance):
        yield ValidationError(f"unknown user {instance!r}", validator="x-user")


def _x_reference(validator, form_key, instance, schema):
    lookup = _lookups.get().get("reference")
    if isinstance(instance, int) and lookup and not lookup(form_key, instance):
        yield ValidationError(f"no record {instance} in {form_key}", validator="x-reference")


def _multiple_of(validator, divisor, instance, schema):
    """multipleOf in decimal arithmetic, so 0.07 is a multiple of 0.01 (binary floats say no)."""
    if not validator.is_type(instance, "number") or isinstance(instance, bool):
        return
    try:
        remainder = Decimal(str(instance)) % Decimal(str(divisor))
    except (InvalidOperation, ValueError):
        remainder = 1
    if remainder != 0:
        yield ValidationError(f"{instance!r} is not a multiple of {divisor}", validator="multipleOf")


_Base = validators.extend(Draft202012Validator, {"x-user": _x_user, "x-reference": _x_reference,
                                                 "multipleOf": _multiple_of})


_validators = {}


def validator_for(version):
    """A validator for one form version (conditional requiredness compiled in), built once.

    Keyed by the version's checksum, so an edited draft gets a fresh one.
    """
    key = (version.id, version.checksum)
    v = _validators.get(key)
    if v is None:
        v = _Base(effective_schema(version.schema, version.ui), format_checker=FORMATS)
        if len(_validators) > 1000:
            _validators.clear()
        _validators[key] = v
    return v


def errors_of(version, data, lookups=None, prefix=()):
    """Every problem with data as {JSON pointer: [message, ...]}; empty when valid."""
    out = {}
    v = validator_for(version)
    token = _lookups.set(lookups or {})
    try:
        for err in v.iter_errors(data):
            for path, message in _explain(err):
                messages = out.setdefault(pointer([*prefix, *path]), [])
                if message not in messages:
                    messages.append(message)
    finally:
        _lookups.reset(token)
    return out


def _explain(err):
    path = list(err.absolute_path)
    kind, limit = err.validator, err.validator_value
    if kind == "required":
        present = err.instance if isinstance(err.instance, dict) else {}
        return [([*path, name], _("This field is required")) for name in limit if name not in present]
    if kind in ("additionalProperties", "unevaluatedProperties"):
        allowed = err.schema.get("properties", {})
        extra = [k for k in (err.instance or {}) if k not in allowed]
        return [([*path, name], _("Unknown field")) for name in extra]
    if kind == "format":
        text = {
            "cn-mobile": _("Enter a valid mainland China mobile number (11 digits)"),
            "date": _("Enter a valid date (YYYY-MM-DD)"),
            "date-time": _("Enter a valid date and time"),
        }.get(limit, _("Invalid format"))
        return [(path, text)]
    if kind == "type":
        names = {"string": _("text"), "integer": _("a whole number"), "number": _("a number"),
                 "boolean": _("yes or no"), "array": _("a list"), "object": _("an object"), "null": _("empty")}
        wanted = limit if isinstance(limit, list) else [limit]
        return [(path, _("Must be %(type)s", type=_(" or ").join(names.get(t, t) for t in wanted)))]
    simple = {
        "enum": lambda: _("Not one of the allowed choices"),
        "const": lambda: _("Not the allowed value"),
        "minimum": lambda: _("Must be at least %(n)s", n=limit),
        "maximum": lambda: _("Must be at most %(n)s", n=limit),
        "exclusiveMinimum": lambda: _("Must be more than %(n)s", n=limit),
        "exclusiveMaximum": lambda: _("Must be less than %(n)s", n=limit),
        "minLength": lambda: _("Enter at least %(n)s characters", n=limit),
        "maxLength": lambda: _("Enter at most %(n)s characters", n=limit),
        "minItems": lambda: _("Choose at least %(n)s", n=limit),
        "maxItems": lambda: _("Choose at most %(n)s", n=limit),
        "uniqueItems": lambda: _("Each choice may appear only once"),
        "pattern": lambda: _("Invalid format"),
        "multipleOf": lambda: (_("Use at most two decimal places") if limit == 0.01
                               else _("Must be a multiple of %(n)s", n=limit)),
        "x-user": lambda: _("No such user"),
        "x-reference": lambda: _("The referenced record does not exist or is not visible to you"),
    }
    if kind in simple:
        return [(path, simple[kind]())]
    return [(path, _("Invalid value"))]
