"""Contact phone numbers as people write them, and what is not one."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from kechuang.registry.contacts import validate_contact_email, validate_contact_phone


@pytest.mark.parametrize(
    "phone",
    [
        "021-5555 0101",
        "+86 138 0013 8000",
        "(021) 55550101 转 123",
        "021-5555 0101 ext. 12",
        "（021）５５５５０１０１",  # full-width, as a Chinese keyboard types it
        "021-55550101 / 13800138000",
        "021-55550101、13800138000",
        "",
    ],
)
def test_a_phone_number_as_people_write_it_is_accepted(phone):
    validate_contact_phone(phone)


@pytest.mark.parametrize("phone", ["xxxx", "12", "无", "021-55550101\n", "021-55550101 / 12"])
def test_what_is_not_a_phone_number_is_refused(phone):
    with pytest.raises(ValidationError):
        validate_contact_phone(phone)


@pytest.mark.parametrize("email", ["not-an-email", "rd at alice", "a@b@c", "rd@alice.example\n"])
def test_what_is_not_an_e_mail_address_is_refused(email):
    with pytest.raises(ValidationError):
        validate_contact_email(email)
