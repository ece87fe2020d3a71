"""Build the seed corpus of the fuzzing harnesses: small real files, one directory each.

Run ``python tests/fuzz/seeds.py`` to rewrite ``tests/fuzz/corpus/`` (committed, about
100 KB). The images are 16x16 crops of scikit-image's sample photos encoded by
Pillow the way users' files are (baseline and progressive JPEG, PNG of every colour
type, lossy and lossless WebP, with EXIF and ICC blocks), then labelled by
:func:`provmark.metadata.write_label`; the XMP packets are the forms real writers
use (ours, the TC260 practice guide's attribute and element forms, other tools'
properties, comments, BOM, truncations) plus small copies of the hostile inputs of
``hostile.py``; the JSON and key files cover the valid shapes and the usual
mistakes. Pillow's encoders are deterministic for one version, so the files only
change when Pillow does.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import hostile  # noqa: E402
from harnesses import CORPUS, LABEL_ARGS  # noqa: E402


def _photo(name: str, size: int = 16):
    import numpy as np
    import skimage.data
    from PIL import Image

    img = getattr(skimage.data, name)()
    h, w = img.shape[:2]
    crop = img[h // 2 - 64 : h // 2 + 64, w // 2 - 64 : w // 2 + 64]
    return Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.LANCZOS)


def _encode(im, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def images() -> dict[str, bytes]:
    """Plain image files as encoders write them."""
    from PIL import Image, ImageCms

    rgb = _photo("astronaut")
    coffee = _photo("coffee", 12)
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    icc[24:36] = bytes([0x07, 0xE9, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])  # creation time: 2025-01-01
    icc = bytes(icc)
    exif = Image.Exif()
    exif[0x010F] = "provmark-fuzz"  # Make
    exif[0x0112] = 1  # Orientation
    files = {
        "photo.png": _encode(rgb, "PNG"),
        "photo-grey.png": _encode(rgb.convert("L"), "PNG"),
        "photo-palette.png": _encode(rgb.convert("P", palette=Image.ADAPTIVE, colors=16), "PNG"),
        "photo-rgba.png": _encode(rgb.convert("RGBA"), "PNG"),
        "photo-icc-exif.png": _encode(coffee, "PNG", icc_profile=icc, exif=exif.tobytes()),
        "photo.jpg": _encode(rgb, "JPEG", quality=90),
        "photo-progressive.jpg": _encode(coffee, "JPEG", quality=75, progressive=True),
        "photo-icc-exif.jpg": _encode(coffee, "JPEG", quality=85, icc_profile=icc,
                                      exif=exif.tobytes()),
        "photo-grey.jpg": _encode(rgb.convert("L"), "JPEG", quality=80),
        "photo-lossy.webp": _encode(rgb, "WEBP", quality=80),
        "photo-lossless.webp": _encode(coffee, "WEBP", lossless=True),
        "photo-alpha.webp": _encode(rgb.convert("RGBA"), "WEBP", lossless=True),
        "photo-exif.webp": _encode(coffee, "WEBP", quality=70, exif=exif.tobytes()),
    }
    frames = [rgb, rgb.transpose(Image.FLIP_LEFT_RIGHT)]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    files["animated.webp"] = buf.getvalue()
    return files


def labelled(plain: dict[str, bytes]) -> dict[str, bytes]:
    """The plain files labelled, in both JSON shapes, plus the other labels seen."""
    from provmark import metadata as m

    label = m.AIGCLabel(*LABEL_ARGS)
    out = {}
    for name, data in plain.items():
        if name.startswith(("photo.", "photo-icc", "photo-lossless", "photo-lossy")):
            stem, ext = name.rsplit(".", 1)
            out[f"{stem}-labelled.{ext}"] = m.write_label(data, label)
            out[f"{stem}-wrapped.{ext}"] = m.write_label(data, label, wrapped_json=True)
    png = plain["photo.png"]
    text = label.to_json().encode()
    out["text-chunk-aigc.png"] = hostile.tiny_png(hostile.png_chunk(b"tEXt", b"AIGC\x00" + text))
    out["ztxt-aigc.png"] = hostile.tiny_png(
        hostile.png_chunk(b"zTXt", b"AIGC\x00\x00" + __import__("zlib").compress(text)))
    out["itxt-xmp-compressed.png"] = hostile.tiny_png(
        hostile.png_itxt(m._new_xmp_packet(label.to_json(wrapped=False)), compressed=True))
    labelled_png = m.write_label(png, label)
    out["photo-labelled-truncated.png"] = labelled_png[: len(labelled_png) * 2 // 3]
    labelled_jpg = m.write_label(plain["photo.jpg"], label)
    out["photo-labelled-truncated.jpg"] = labelled_jpg[: labelled_jpg.index(b"</rdf:RDF>")]
    out["jpeg-two-xmp.jpg"] = hostile.tiny_jpeg(
        hostile.jpeg_app1(m._new_xmp_packet(label.to_json(wrapped=False))),
        hostile.jpeg_app1(xmp_packets()["attribute-form.xmp"]))
    out["webp-xmp-unflagged.webp"] = hostile.tiny_webp(
        hostile.riff_chunk(b"XMP ", xmp_packets()["element-form.xmp"]))
    return out


def refused_images() -> dict[str, bytes]:
    """Files read_image must refuse with a clear message."""
    import struct
    import zlib

    rgb = _photo("chelsea", 8)
    ihdr16 = hostile.png_chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 16, 2, 0, 0, 0))
    huge = hostile.png_chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
    idat = hostile.png_chunk(b"IDAT", zlib.compress(b"\x00" * 13))
    return {
        "photo.gif": _encode(rgb.convert("P"), "GIF"),
        "photo.bmp": _encode(rgb, "BMP"),
        "16-bit.png": hostile.PNG_SIGNATURE + ihdr16 + idat + hostile.png_chunk(b"IEND", b""),
        "huge-header.png": hostile.PNG_SIGNATURE + huge + idat + hostile.png_chunk(b"IEND", b""),
        "empty": b"",
    }


def xmp_packets() -> dict[str, bytes]:
    from provmark import metadata as m

    value = m.AIGCLabel(*LABEL_ARGS).to_json(wrapped=False)
    q = value.replace('"', "&quot;")
    desc = (f'<rdf:Description rdf:about="" xmlns:TC260="{hostile.TC260}" '
            f'xmlns:Iptc4xmpExt="{hostile.IPTC}"')

    def packet(body: str, head: str = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
               ) -> bytes:
        return (f'{head}<x:xmpmeta xmlns:x="adobe:ns:meta/">\n <rdf:RDF xmlns:rdf="{hostile.RDF}">'
                f"\n  {body}\n </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end=\"w\"?>").encode()

    ours = m._new_xmp_packet(value)
    packets = {
        "provmark.xmp": ours,
        "attribute-form.xmp": packet(f'{desc} TC260:AIGC="{q}"/>'),
        "element-form.xmp": packet(f"{desc}>\n   <TC260:AIGC>{q}</TC260:AIGC>\n"
                                   "   <Iptc4xmpExt:DigitalSourceType>"
                                   f"{m.DIGITAL_SOURCE_TYPE_TRAINED}"
                                   "</Iptc4xmpExt:DigitalSourceType>\n  </rdf:Description>"),
        "other-tools.xmp": packet(
            "<rdf:Description rdf:about='' xmlns:dc='http://purl.org/dc/elements/1.1/' "
            "xmlns:xmp='http://ns.adobe.com/xap/1.0/' xmp:Rating='3' "
            f"xmlns:tc='{hostile.TC260}' tc:AIGC='{q}'>\n"
            "   <dc:title><rdf:Alt><rdf:li xml:lang='x-default'>A &amp; B</rdf:li></rdf:Alt>"
            "</dc:title>\n   <dc:creator><rdf:Seq><rdf:li>Ann</rdf:li></rdf:Seq></dc:creator>\n"
            "   <!-- a comment --><![CDATA[raw <text>]]>\n  </rdf:Description>"),
        "odd-namespace.xmp": packet(
            f'<rdf:Description rdf:about="" xmlns:T="https://WWW.tc260.org.cn/ns/AIGC/1.0" '
            f'T:AIGC="{q}"/>'),
        "wrapped-json.xmp": packet(f"{desc}><TC260:AIGC>"
                                   + m.AIGCLabel(*LABEL_ARGS).to_json().replace('"', "&quot;")
                                   + "</TC260:AIGC></rdf:Description>"),
        "bom-crlf.xmp": b"\xef\xbb\xbf" + ours.replace(b"\n", b"\r\n"),
        "no-wrapper.xmp": packet(f'{desc} TC260:AIGC="{q}"/>', head=""),
        "truncated.xmp": ours[: ours.index(b"</TC260:AIGC>") + 5],
        "entity.xmp": b'<!DOCTYPE x [<!ENTITY a "b">]>' + ours,
        "empty.xmp": b"",
    }
    for name in ("unclosed-aigc", "aigc-no-gt", "nested-aigc", "comment-of-tags",
                 "many-attributes", "dst-element-run", "deep-nesting", "entity-refs"):
        packets[f"hostile-{name}.xmp"] = hostile.packet(name, 1024)
    return packets


def json_texts() -> dict[str, bytes]:
    from provmark import metadata as m

    label = m.AIGCLabel(*LABEL_ARGS)
    full = label.with_propagator("PLATFORM-9", "p-42", "pm1:XYZ")
    return {
        "wrapped.json": label.to_json().encode(),
        "bare.json": label.to_json(wrapped=False).encode(),
        "propagated.json": full.to_json().encode(),
        "numeric-label.json": b'{"Label":1,"ContentProducer":"A","ProduceID":"b"}',
        "unknown-key.json": b'{"AIGC":{"Label":"3","ContentProducer":"A","ProduceID":"b","X":1}}',
        "duplicate-key.json": b'{"Label":"1","Label":"2","ContentProducer":"A","ProduceID":"b"}',
        "space.json": b'{"Label":"2","ContentProducer":"A B","ProduceID":"b"}',
        "nested.json": b'{"AIGC":[[[[{"Label":"1"}]]]]}',
        "bom-utf8.json": b"\xef\xbb\xbf" + label.to_json().encode(),
        "not-json.json": b"Label=1;ContentProducer=A",
    }


def key_files() -> dict[str, bytes]:
    return {
        "secret.key": b"correct horse battery staple\n",
        "crlf.key": b"\x00\x01binary\xffkey\r\n",
        "newline-only.key": b"\n",
        "long.key": bytes(range(256)) * 16,
        "too-long.key": b"k" * 4097,
    }


def corpus() -> dict[str, dict[str, bytes]]:
    """Every harness's seeds: {harness: {file name: bytes}}."""
    plain = images()
    files = {**plain, **labelled(plain)}
    hostile_files = {f"hostile-{name}": build(2048) for name, build in hostile.FILES.items()
                     if name != "png-bombs-other-keyword"}
    return {
        "image": {**plain, **refused_images()},
        "containers": {**files, **hostile_files},
        "writer": files,
        "xmp": xmp_packets(),
        "json": json_texts(),
        "key": key_files(),
    }


def write(root: Path = CORPUS) -> None:
    if root.exists():
        shutil.rmtree(root)
    for harness, seeds in corpus().items():
        (root / harness).mkdir(parents=True)
        for name, data in seeds.items():
            (root / harness / name).write_bytes(data)


def main() -> None:
    write()
    total = sum(f.stat().st_size for f in CORPUS.rglob("*") if f.is_file())
    digest = hashlib.sha256()
    for f in sorted(CORPUS.rglob("*")):
        if f.is_file():
            digest.update(f.relative_to(CORPUS).as_posix().encode() + f.read_bytes())
    n = sum(1 for f in CORPUS.rglob("*") if f.is_file())
    print(f"{CORPUS}: {n} files, {total} bytes, sha256 {digest.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
