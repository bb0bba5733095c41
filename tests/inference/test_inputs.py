"""Input checks: the shapes a helper takes, and errors that name the bad item."""

import pytest

from hfapps.errors import InputError
from hfapps.inference.inputs import check_text, chunked, shape_of


def test_shapes_of_inputs():
    assert shape_of("a") == "single"
    assert shape_of(["a"]) == "list"
    assert shape_of(("a",)) == "list"
    assert shape_of(x for x in "ab") == "stream"
    with pytest.raises(InputError, match="None"):
        shape_of(None)
    with pytest.raises(InputError, match="decode"):
        shape_of(b"bytes")
    with pytest.raises(InputError, match="int"):
        shape_of(3)


@pytest.mark.parametrize("bad, message", [("", "empty"), ("  \n", "empty"), (None, "NoneType"), (3, "int")])
def test_check_text_names_the_problem_and_index(bad, message):
    with pytest.raises(InputError, match=message) as err:
        check_text(bad, 7)
    assert "index 7" in str(err.value)


def test_chunked_keeps_order_and_remainder():
    assert list(chunked(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
