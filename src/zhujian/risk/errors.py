"""The one error every risk model raises when its inputs do not allow an answer."""

from __future__ import annotations


def format_number(value: object) -> str:
    """Format a value for a message."""
    # Integral floats print as integers so that messages read like the input ("waist_cm 30", not "30.0").
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# The name is part of the project's vocabulary ("cannot compute: …"), so it keeps no Error suffix.
class CannotCompute(ValueError):  # noqa: N818
    """A model cannot produce a result: an input is missing, malformed, or outside the model's valid range.

    `field` names the offending input (None when the problem is not tied to one input). The message always starts
    with "cannot compute:" so that callers can show it as is.
    """

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.value = value

    @classmethod
    def missing(cls, field: str) -> CannotCompute:
        return cls(f"cannot compute: missing {field}", field=field)

    @classmethod
    def out_of_range(cls, field: str, value: float, low: float, high: float) -> CannotCompute:
        return cls(
            f"cannot compute: {field} {format_number(value)} outside {format_number(low)}–{format_number(high)}",
            field=field,
            value=value,
        )

    @classmethod
    def invalid(cls, field: str, value: object, reason: str) -> CannotCompute:
        return cls(f"cannot compute: {field} {format_number(value)} {reason}", field=field, value=value)


def require_range(field: str, value: float, low: float, high: float) -> float:
    """Return `value` if `low <= value <= high` (both ends inclusive), else raise `CannotCompute`."""
    # `not (a <= x <= b)` is also true for NaN, which must never reach an equation.
    if not (low <= value <= high):
        raise CannotCompute.out_of_range(field, value, low, high)
    return value


def require_positive(field: str, value: float) -> float:
    """Return `value` if it is a finite number > 0 (logarithms and powers need it), else raise `CannotCompute`."""
    if not (0 < value < float("inf")):
        raise CannotCompute.invalid(field, value, "must be a finite number > 0")
    return value
