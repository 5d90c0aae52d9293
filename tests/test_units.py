import pytest

from aggregator.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("7d", 604800),
        ("1w", 604800),
        ("1.5h", 5400),
        ("500ms", 0.5),
        (" 10m ", 600),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "15 minutes", "-5m", "0s", "m", "1y", 15])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("10MB", 10_000_000), ("512KB", 512_000), ("1GiB", 1 << 30), ("100", 100), ("2mb", 2_000_000)],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "ten MB", "10 XB", "0MB", 10])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_format_duration():
    assert format_duration(900) == "15m"
    assert format_duration(86400) == "1d"
    assert format_duration(90) == "90s"


def test_a_source_record_holds_every_field_of_a_source_state_in_its_order():
    """SourceRecord repeats SourceState's fields (a named tuple cannot extend another's):
    the two lists must not drift apart."""
    from aggregator.model import SourceRecord, SourceState

    assert SourceRecord._fields[: len(SourceState._fields)] == SourceState._fields
