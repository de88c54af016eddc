"""Every error the driver layer raises derives from DriverError; template errors are still ValueErrors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import drivers
from drivers.errors import DriverError
from drivers.protocol.template import EncodeError, Template, TemplateError


def driver_exceptions() -> list[type[BaseException]]:
    """Every exception class defined (not imported) anywhere under drivers/."""
    found = []
    for info in pkgutil.walk_packages(drivers.__path__, prefix="drivers."):
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_the_walk_finds_the_template_errors() -> None:
    assert {TemplateError, EncodeError, DriverError} <= set(driver_exceptions())


@pytest.mark.parametrize("cls", driver_exceptions(), ids=lambda cls: cls.__name__)
def test_each_error_is_a_driver_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, DriverError), f"{cls.__module__}.{cls.__name__} does not derive from DriverError"


def test_a_bad_template_is_caught_by_the_root_and_by_value_error() -> None:
    with pytest.raises(DriverError) as caught:
        Template.parse("{bad token")
    assert isinstance(caught.value, TemplateError)
    assert isinstance(caught.value, ValueError)


def test_a_value_that_does_not_fit_is_caught_by_the_root_and_by_value_error() -> None:
    with pytest.raises(DriverError) as caught:
        Template.parse("AA {level}").build({"level": 300})
    assert isinstance(caught.value, EncodeError)
    assert isinstance(caught.value, ValueError)
