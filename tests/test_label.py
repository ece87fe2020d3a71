"""Tests for one-call labelling (provmark._label): explicit label, watermark and
metadata label applied in the right order and bound by the integrity code."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import provmark
from provmark import Payload, metadata
from provmark._label import Labelled, write_labelled

pytestmark = pytest.mark.usefixtures("numba_one_thread")

PAYLOAD = Payload(provider=4242, content_id=123456789, label=1)
KEY = b"label-test-secret"


@pytest.fixture(scope="module")
def labelled(astronaut_512) -> Labelled:
    return provmark.label(astronaut_512, PAYLOAD, key=KEY, content_producer="ACME-AI",
                          produce_id="img-123456789")


def test_label_layers(astronaut_512, labelled):
    assert isinstance(labelled.image, np.ndarray)
    assert labelled.image.shape == astronaut_512.shape and labelled.image.dtype == np.uint8
    lab = labelled.label
    assert (lab.label, lab.content_producer, lab.produce_id) == ("1", "ACME-AI", "img-123456789")
    assert lab.reserved_code1.startswith("pm1:")
    assert metadata.verify_integrity(lab, PAYLOAD.to_bytes(), KEY) is True
    assert metadata.verify_integrity(lab, PAYLOAD.to_bytes(), b"other") is False
    det = provmark.detect(labelled.image, key=KEY)
    assert det.found and det.payload == PAYLOAD


def test_explicit_box_height(labelled):
    x0, y0, x1, y1 = labelled.explicit_box
    assert labelled.explicit_text_height >= 0.05 * 512
    assert y1 - y0 >= 0.05 * 512
    # bottom-right by default, inside the image
    assert 256 < x0 < x1 <= 512 and 256 < y0 < y1 <= 512


def test_watermark_covers_explicit_label(astronaut_512, labelled):
    """The mark is embedded after the visible label: drawing it again changes nothing
    except through the mark, and the box region differs from the unlabelled photo."""
    x0, y0, x1, y1 = labelled.explicit_box
    region = labelled.image[y0:y1, x0:x1].astype(int)
    assert np.abs(region - astronaut_512[y0:y1, x0:x1]).mean() > 20  # plate drawn
    outside = labelled.image[:y0, :].astype(int) - astronaut_512[:y0, :]
    assert 0 < np.abs(outside).mean() < 3  # only the invisible mark elsewhere


def test_pil_in_pil_out_and_input_untouched(astronaut_512):
    pil = Image.fromarray(np.array(astronaut_512))
    before = np.asarray(pil).copy()
    out = provmark.label(pil, PAYLOAD, content_producer="ACME", produce_id="p-1",
                         explicit=False)
    assert isinstance(out.image, Image.Image)
    assert out.explicit_box is None and out.explicit_text_height == 0
    np.testing.assert_array_equal(np.asarray(pil), before)
    # public key: integrity code under the public key
    assert metadata.verify_integrity(out.label, PAYLOAD.to_bytes(), provmark.PUBLIC_KEY)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"content_producer": "AC ME", "produce_id": "x"}, ValueError, "ContentProducer"),
    ({"content_producer": "ACME", "produce_id": ""}, ValueError, "ProduceID"),
    ({"content_producer": "ACME", "produce_id": 'a"b'}, ValueError, "ProduceID"),
    ({"content_producer": "ACME", "produce_id": "x", "text": "generated"}, ValueError, "GB 45438"),
    ({"content_producer": "ACME", "produce_id": "x", "position": "middle"}, ValueError, "position"),
    ({"content_producer": 5, "produce_id": "x"}, TypeError, "content_producer"),
])
def test_label_rejects_bad_arguments(astronaut_512, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        provmark.label(astronaut_512, PAYLOAD, **kwargs)


def test_label_requires_metadata_fields(astronaut_512):
    with pytest.raises(TypeError, match="content_producer"):
        provmark.label(astronaut_512, PAYLOAD, produce_id="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="payload"):
        provmark.label(astronaut_512, (1, 2, 3), content_producer="A", produce_id="x")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
def test_write_labelled(tmp_path, labelled, ext):
    out = write_labelled(tmp_path / f"o{ext}", labelled, quality=92)
    reading = metadata.read_label_file(out)
    assert reading.label == labelled.label and not reading.problems
    assert [p.name for p in tmp_path.iterdir()] == [f"o{ext}"]  # no temporary left behind
    with pytest.raises(provmark.ImageError, match="already exists"):
        write_labelled(out, labelled)
    write_labelled(out, labelled, overwrite=True)
    with pytest.raises(provmark.ImageError, match="input"):
        write_labelled(out, labelled, source=out, overwrite=True)
    with pytest.raises(provmark.ImageError, match="extension"):
        write_labelled(tmp_path / "o.gif", labelled)
