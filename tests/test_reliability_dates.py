"""Months the store's datetime64[ns] coordinate cannot hold are refused (exit 2, naming
the field and the range); every month inside it comes out as the calendar says."""

from __future__ import annotations

import pytest
from helpers import small_config
from hypothesis import given, settings
from hypothesis import strategies as st
from reliability import small_file

from gpusim.cli import main
from gpusim.config import FIRST_MONTH_NUMBER, LAST_MONTH_NUMBER, month_label, month_number
from gpusim.cube import month_coordinate
from gpusim.errors import InputError

UNDATED = ("market.demand.training_gpu_hours=[]", "market.capacity.build=[]",
           "market.price.launches=[]")
"""The small scenario without its dated schedules, so that any start month is valid."""


def test_the_range_is_that_of_datetime64_ns():
    assert (month_label(FIRST_MONTH_NUMBER), month_label(LAST_MONTH_NUMBER)) == (
        "1677-10", "2262-04")


@settings(max_examples=150, deadline=None, derandomize=True)
@given(year=st.integers(1000, 3000), month=st.integers(1, 12), horizon=st.integers(2, 600))
def test_a_month_is_either_refused_or_exact(year, month, horizon):
    start = f"{year:04d}-{month:02d}"
    first = month_number(start)
    inside = FIRST_MONTH_NUMBER <= first and first + horizon - 1 <= LAST_MONTH_NUMBER
    try:
        config = small_config(f"start={start}", f"horizon_months={horizon}", *UNDATED)
    except InputError as err:
        assert not inside, err
        assert f"start = '{start}'" in str(err) and "1677-10 .. 2262-04" in str(err)
        return
    assert inside
    dates = month_coordinate(config)
    labels = [str(d)[:7] for d in dates.astype("datetime64[M]")]
    assert labels == [month_label(first + i) for i in range(horizon)]
    assert all(str(d).endswith("-01T00:00:00.000000000") for d in dates)


@pytest.mark.parametrize(("start", "horizon"), [("2300-01", 84), ("1600-06", 12),
                                                ("2262-04", 2), ("1677-09", 24)])
def test_the_command_refuses_them_before_writing(tmp_path, capsys, start, horizon):
    config = small_file(tmp_path, start=start, horizon_months=horizon)
    out = tmp_path / "x.zarr"
    assert main(["run", str(config), "--paths", "10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"start = '{start}'" in err and "2262-04" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.yaml"]
