"""provmark.integrations.diffusers against the real diffusers code.

The contract of ``StableDiffusionXLWatermarker.apply_watermark``: an NCHW float tensor
in [-1, 1] in, the same shape, dtype and device out, then the pipeline's
``VaeImageProcessor.postprocess`` makes uint8 images of it. The tests push the
watermarker's output through that very postprocessing and read every batch index
back; the last test builds a tiny, randomly initialised SDXL pipeline offline (tiny
UNet, VAE and CLIP text encoders, a CLIP tokenizer over a byte-level vocabulary
written here) and runs it with the watermarker installed. Nothing is downloaded.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the diffusers integration needs torch")
pytest.importorskip("diffusers", reason="the diffusers integration needs diffusers")

from diffusers.image_processor import VaeImageProcessor  # noqa: E402
from PIL import Image  # noqa: E402

import provmark  # noqa: E402
from provmark import ImageError, Payload  # noqa: E402
from provmark.integrations.diffusers import (  # noqa: E402
    ProvmarkWatermarker,
    mark_images,
    tensor_to_uint8,
    uint8_to_tensor,
)

FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def postprocess(images: torch.Tensor) -> list[np.ndarray]:
    """What an SDXL pipeline returns for ``images`` (output_type="pil"), as arrays."""
    return [np.asarray(im) for im in VaeImageProcessor().postprocess(images, output_type="pil")]


def to_tensor(pixels: np.ndarray, dtype: torch.dtype, *, jitter: float = 0.0,
              seed: int = 0) -> torch.Tensor:
    """NHWC uint8 -> NCHW in [-1, 1], plus uniform noise of +-``jitter`` (in [-1, 1]
    units) so that values sit between grey levels and a little outside [-1, 1], as a
    VAE's output does."""
    x = torch.from_numpy(pixels.astype(np.float64) / 127.5 - 1.0).permute(0, 3, 1, 2)
    if jitter:
        generator = torch.Generator().manual_seed(seed)
        x = x + (torch.rand(x.shape, generator=generator, dtype=torch.float64) * 2 - 1) * jitter
    return x.to(dtype)


@pytest.fixture(scope="module")
def photo_batch(photo_factory) -> np.ndarray:
    """Three different photos, 256 rows x 320 columns, as an NHWC uint8 batch."""
    return np.stack([photo_factory(name, 320, 256) for name in ("astronaut", "coffee", "chelsea")])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_levels_survive_the_pipeline_conversion(dtype):
    levels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    as_tensor = uint8_to_tensor(levels, dtype=dtype)
    assert as_tensor.dtype == dtype and as_tensor.shape == (1, 3, 16, 16)
    assert float(as_tensor.min()) == -1.0 and float(as_tensor.max()) == 1.0
    np.testing.assert_array_equal(postprocess(as_tensor)[0], levels[0])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_tensor_to_uint8_is_the_pipeline_conversion(dtype, photo_batch):
    images = to_tensor(photo_batch, dtype, jitter=0.02)
    assert float(images.min()) < -1.0 or float(images.max()) > 1.0  # clipping is exercised
    # values halfway between grey levels: where rounding half to even decides
    halfway = torch.from_numpy(np.arange(256) + 0.5).reshape(1, 1, 16, 16) / 127.5 - 1.0
    images = torch.cat([images, halfway.to(dtype).expand(1, 3, 16, 16).repeat(1, 1, 16, 20)])
    before = images.clone()
    pipeline = postprocess(images)
    converted = tensor_to_uint8(images)
    assert torch.equal(images, before)  # the input is not modified
    for index, expected in enumerate(pipeline):
        np.testing.assert_array_equal(converted[index], expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.bfloat16], ids=str)
def test_apply_watermark_survives_postprocess_at_every_index(dtype, photo_batch):
    images = to_tensor(photo_batch, dtype, jitter=0.01, seed=1)
    unmarked = postprocess(images)  # what the pipeline would return without a mark
    watermarker = ProvmarkWatermarker(Payload(provider=4242, content_id=1000, label=2))
    out = watermarker.apply_watermark(images)

    assert out.shape == images.shape and out.dtype == dtype and out.device == images.device
    assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0
    expected = tuple(Payload(4242, 1000 + i, 2) for i in range(len(photo_batch)))
    assert watermarker.last_payloads == expected
    for index, pixels in enumerate(postprocess(out)):
        # byte for byte what the library makes of the pipeline's own pixels
        np.testing.assert_array_equal(pixels, provmark.embed(unmarked[index], expected[index]))
        assert not np.array_equal(pixels, unmarked[index])
        detection = provmark.detect(pixels)
        assert detection.found, (index, detection.reason)
        assert detection.payload == expected[index]


def test_pipeline_output_read_after_jpeg(photo_batch, jpeg_roundtrip):
    watermarker = ProvmarkWatermarker(Payload(provider=77, content_id=5), key=b"provider secret")
    out = watermarker.apply_watermark(to_tensor(photo_batch, torch.float16))
    for index, pixels in enumerate(postprocess(out)):
        copy = jpeg_roundtrip(pixels, 75)
        assert provmark.detect(copy, key=b"provider secret").payload == Payload(77, 5 + index)
        assert not provmark.detect(copy).found  # the public key does not read it


def test_counter_runs_on_across_calls_and_callable_source(photo_batch):
    counter = ProvmarkWatermarker(Payload(provider=9, content_id=2**40 - 4))
    counter.apply_watermark(to_tensor(photo_batch[:2], torch.float32))
    counter.apply_watermark(to_tensor(photo_batch[2:], torch.float32))
    assert counter.last_payloads == (Payload(9, 2**40 - 2),)
    assert counter.next_index == 3
    with pytest.raises(ValueError, match="content_id"):  # past 2**40 - 1: refused, not wrapped
        counter.apply_watermark(to_tensor(photo_batch[:2], torch.float32))

    seen = []

    def source(index: int) -> Payload:
        seen.append(index)
        return Payload(provider=3, content_id=100 * index, label=3)

    watermarker = ProvmarkWatermarker(source)
    out = postprocess(watermarker.apply_watermark(to_tensor(photo_batch, torch.float32)))
    assert seen == [0, 1, 2]
    assert [provmark.detect(p).payload for p in out] == [Payload(3, 0, 3), Payload(3, 100, 3),
                                                          Payload(3, 200, 3)]


def test_mark_images_on_pil_outputs(photo_batch):
    pil_images = [Image.fromarray(p) for p in photo_batch]
    marked = mark_images(pil_images, Payload(provider=12, content_id=40))
    assert all(isinstance(m, Image.Image) and m.size == (320, 256) for m in marked)
    assert [provmark.detect(m).payload.content_id for m in marked] == [40, 41, 42]
    np.testing.assert_array_equal(np.asarray(pil_images[0]), photo_batch[0])  # input untouched
    with pytest.raises(TypeError, match="list"):
        mark_images(pil_images[0], Payload(provider=12, content_id=40))


def test_refusals_name_the_batch_index(photo_batch):
    watermarker = ProvmarkWatermarker(Payload(provider=1, content_id=1))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        watermarker.apply_watermark(torch.zeros(3, 256, 256))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        watermarker.apply_watermark(torch.zeros(1, 4, 256, 256))
    with pytest.raises(TypeError, match="float"):
        watermarker.apply_watermark(torch.zeros(1, 3, 256, 256, dtype=torch.uint8))
    with pytest.raises(ImageError, match="image 0 of the batch.*256x256"):
        watermarker.apply_watermark(torch.zeros(1, 3, 128, 128))
    with pytest.raises(TypeError, match="callable returned"):
        ProvmarkWatermarker(lambda index: index).apply_watermark(
            to_tensor(photo_batch[:1], torch.float32))
    with pytest.raises(ValueError, match="on_error"):
        ProvmarkWatermarker(Payload(1, 1), on_error="ignore")


def test_on_error_warn_returns_the_unmarkable_image_unchanged(photo_batch):
    white = np.full_like(photo_batch[:1], 255)  # saturated: cannot carry the mark
    batch = to_tensor(np.concatenate([photo_batch[:1], white]), torch.float16)
    watermarker = ProvmarkWatermarker(Payload(provider=5, content_id=10), on_error="warn")
    with pytest.warns(RuntimeWarning, match="image 1 of the batch cannot be marked"):
        out = watermarker.apply_watermark(batch)
    assert watermarker.last_payloads == (Payload(5, 10), None)
    first, second = postprocess(out)
    assert provmark.detect(first).payload == Payload(5, 10)
    np.testing.assert_array_equal(second, white[0])
    with pytest.raises(provmark.EmbedError, match="image 1 of the batch"):
        ProvmarkWatermarker(Payload(5, 10)).apply_watermark(batch)


# --------------------------------------------------------------------------- #
# A real SDXL pipeline, tiny and randomly initialised, built offline


def _byte_level_alphabet() -> list[str]:
    """The 256 characters of the byte-level BPE alphabet (GPT-2 / CLIP)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def _tiny_tokenizer(directory):
    """A CLIP tokenizer with one token per byte (no merges): any prompt tokenises."""
    from transformers import CLIPTokenizer

    alphabet = _byte_level_alphabet()
    vocab = {token: i for i, token in enumerate(alphabet + [c + "</w>" for c in alphabet])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"),
                              model_max_length=77)
    return tokenizer, len(vocab)


def _tiny_sdxl_pipeline(directory):
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    tokenizer, vocab_size = _tiny_tokenizer(directory)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80, cross_attention_dim=64, norm_num_groups=1)
    # four blocks: the SDXL VAE's 8x upsampling, so 32x32 latents decode to 256x256
    vae = AutoencoderKL(
        block_out_channels=[8, 8, 8, 8], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4, norm_num_groups=1, sample_size=256, force_upcast=False)
    text_config = CLIPTextConfig(
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, hidden_size=32,
        intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2,
        pad_token_id=1, vocab_size=vocab_size, hidden_act="gelu", projection_dim=32)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                       beta_schedule="scaled_linear", timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=CLIPTextModel(text_config), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(text_config), tokenizer_2=tokenizer,
        unet=unet, scheduler=scheduler, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.slow
# diffusers' Euler scheduler calls np.array on a torch tensor (NumPy 2 deprecation)
@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_tiny_sdxl_pipeline_with_provmark_watermarker(dtype, tmp_path):
    pytest.importorskip("transformers", reason="SDXL's text encoders come from transformers")
    pipe = _tiny_sdxl_pipeline(tmp_path).to(dtype=dtype)

    received = []

    class Recording(ProvmarkWatermarker):
        def apply_watermark(self, images):
            received.append(images.clone())
            return super().apply_watermark(images)

    pipe.watermark = Recording(Payload(provider=4242, content_id=500))
    # no classifier-free guidance: half the UNet work, the same decode and watermark path
    marked = [np.asarray(im) for im in pipe(
        "a watercolour of a lighthouse", num_inference_steps=2, height=256, width=256,
        num_images_per_prompt=2, guidance_scale=1.0, output_type="pil",
        generator=torch.Generator().manual_seed(0)).images]

    assert len(received) == 1 and received[0].dtype == dtype  # the VAE's output, as is
    # what the pipeline would have returned without a watermarker: its own postprocess
    unmarked = [np.asarray(im) for im in pipe.image_processor.postprocess(received[0])]
    assert pipe.watermark.last_payloads == (Payload(4242, 500), Payload(4242, 501))
    for index, pixels in enumerate(marked):
        np.testing.assert_array_equal(pixels, provmark.embed(unmarked[index],
                                                             Payload(4242, 500 + index)))
        assert provmark.detect(pixels).payload == Payload(4242, 500 + index)
