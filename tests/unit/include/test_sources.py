"""How a ``crawl_url`` value names the sources to watch: one URL, or a JSON list of several."""

from __future__ import annotations

import pytest

from include.errors import ConfigurationError
from include.sources import SourcesError, watched_urls


def test_one_url_is_one_source():
    assert watched_urls(" file:///srv/drop/ ") == ["file:///srv/drop/"]


def test_a_json_list_names_several_sources_in_its_order():
    value = '["https://example.com/a.csv", "s3://bucket/drop/", " file:///srv/drop/ "]'
    assert watched_urls(value) == ["https://example.com/a.csv", "s3://bucket/drop/", "file:///srv/drop/"]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("", "is empty"),
        ("[", "is not a JSON list"),
        ("[]", "must list one URL or more"),
        ('["file:///a/", 3]', "each a non-empty string"),
        ('["file:///a/", " "]', "each a non-empty string"),
        ('["file:///a/", "file:///b/", "file:///a/"]', "names file:///a/ more than once"),
    ],
)
def test_a_value_naming_no_usable_sources_is_a_configuration_error_naming_the_problem(value, named):
    with pytest.raises(SourcesError, match=named) as raised:
        watched_urls(value)
    assert isinstance(raised.value, ConfigurationError)  # a permanent error: no retry fixes it
