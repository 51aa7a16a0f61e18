"""client/channels.py: channel names checked and put in the canonical order before anything is sent."""

from __future__ import annotations

import pytest

from portfolio_ws import constants as c
from portfolio_ws.client.channels import checked
from portfolio_ws.errors import UsageError


def test_channels_come_out_in_the_canonical_order_without_repeats() -> None:
    assert checked([c.TRADES, c.POSITIONS, c.TRADES]) == [c.POSITIONS, c.TRADES]
    assert checked(reversed(c.CHANNELS)) == list(c.CHANNELS)


def test_one_channel_given_as_a_string_is_one_channel_not_its_letters() -> None:
    assert checked(c.ORDERS) == [c.ORDERS]


@pytest.mark.parametrize("name", ["quotes", "", "Positions", "positions "])
def test_an_unknown_channel_is_a_usage_error_naming_it(name: str) -> None:
    with pytest.raises(UsageError, match=repr(name)):
        checked([c.POSITIONS, name])
