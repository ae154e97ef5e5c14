"""How far a model can get on a validation set: oracle blur ceilings, split by the blur radius.

    .venv/bin/python benchmarks/quality_ceiling.py                          # experiment=demo's pairs
    .venv/bin/python benchmarks/quality_ceiling.py ckpt=outputs/demo/pretrain/checkpoints/last.ckpt
    .venv/bin/python benchmarks/quality_ceiling.py ckpt=reference experiment=reference
    .venv/bin/python benchmarks/quality_ceiling.py experiment=paper data.root=/data/ebb

Rows (PSNR in dB on [0, 1] RGB, mean over images, as ``bokeh.evaluate`` scores; on synthetic pairs
also over the pixels the target keeps in focus, blur radius < 1 px, and the strongly defocused ones,
radius >= 4 px):

* ``identity``, ``gaussian blur`` (the best global sigma) and ``oracle blur, 9 x 9 regions``: the
  baselines of ``bokeh.evaluate``.
* ``oracle blur, N x N regions`` for other N: every pixel takes, from a bank of Gaussian blurs of the
  input, the sigma with the least error over the N x N region around it *measured against the
  target*: a spatially varying blur driven by a perfect depth map. No model that blurs the input with
  Gaussians beats it at that region size; N = 1 cheats per pixel (an upper bound only). It cannot
  draw disc-shaped highlights, clipped light sources that keep their energy, or what an occluder
  hides in the sharp input, which the synthetic pairs contain.
"""

from __future__ import annotations

import sys

import hydra
import torch
from hydra import compose, initialize_config_dir

from bokeh.cli import quote_path_overrides
from bokeh.evaluate.synthetic import baselines, format_table, oracle_blur, score, validation_samples
from bokeh.train import CONF_DIR, PATH_KEYS

ORACLE_REGIONS = (1, 25)  # beside the 9 x 9 of bokeh.evaluate


def main(argv: list[str]) -> None:
    ckpt = [a.split("=", 1)[1] for a in argv if a.startswith("ckpt=")]
    overrides = quote_path_overrides([a for a in argv if not a.startswith("ckpt=")], PATH_KEYS) or ["experiment=demo"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides + ["output_dir=."])
    samples = validation_samples(hydra.utils.instantiate(cfg.data))
    results = {}
    if ckpt:
        from bokeh.checkpoint import load_generator

        generator = load_generator(ckpt[0]).eval()
        results[f"model {ckpt[0]}"] = score(lambda image: generator(image)[0], samples)
    results |= baselines(samples)
    for region in ORACLE_REGIONS:
        results[f"oracle blur, {region}x{region}"] = score(lambda x, t, n=region: oracle_blur(x, t, n), samples, sees_target=True)
    print(f"{len(samples)} validation pairs ({' '.join(overrides)})")
    print(format_table(results))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])
