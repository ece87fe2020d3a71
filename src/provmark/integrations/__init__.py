"""Adapters that put provmark where images are made and moved at scale.

Each submodule is a thin layer over the public array and bytes API, imported on its
own so that ``import provmark`` never pulls in a heavy framework:

- :mod:`provmark.integrations.diffusers`: a watermarker honouring the contract of
  diffusers' SDXL pipelines (``pipe.watermark = ProvmarkWatermarker(...)``) and a
  function that marks the PIL images any pipeline returns (extra ``provmark[diffusers]``).
- :mod:`provmark.integrations.ray`: the callable classes of a Ray Data pipeline that
  marks files on a cluster, and the engine behind ``provmark embed --engine ray``
  (extra ``provmark[ray]``).
"""
