"""One exception root: every refusal provmark raises derives from ProvmarkError and
from the built-in exception callers already catch."""

import numpy as np
import pytest

import provmark
from provmark.explicit import FontNotFoundError


def test_image_refusals_derive_from_the_root():
    with pytest.raises(provmark.ProvmarkError) as info:
        provmark.embed(np.zeros((8, 8, 3), np.uint8), provmark.Payload(1, 2))
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, provmark.ImageError)


def test_every_public_error_class_has_the_root():
    from provmark.c2pa import C2paError, C2paUnavailableError

    for cls, builtin in [(provmark.ImageError, ValueError), (provmark.EmbedError, ValueError),
                         (C2paError, ValueError), (C2paUnavailableError, ImportError),
                         (FontNotFoundError, RuntimeError)]:
        assert issubclass(cls, provmark.ProvmarkError), cls
        assert issubclass(cls, builtin), cls
