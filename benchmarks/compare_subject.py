"""v4 (Glass-Net with the subject input) against "the subject matte over v2" (issue 30 item 3).

    .venv/bin/python benchmarks/compare_subject.py v4=outputs/reference_v4/pretrain/checkpoints/step-01000.ckpt \
        portraits=path/to/held_out_portraits real=path/to/real_pairs [v2=reference] [count=300] [out=compare.json] \
        [methods=v2,subject-over-v2,v4,subject-over-v4,v4-subject-off] [synthetic=true] [scenes=32]

Methods, each rendered as ``bokeh.render`` renders a photo (the model at its working short side,
256 for these models; the full-size photo through a matte ``m``: ``m * photo + (1 - m) * up(B)``):

* ``v2``: the v2 network, its own matte (guided upsampling, :func:`bokeh.composite.full_size`): today's default.
* ``subject over v2``: ``m_seg * photo + (1 - m_seg) * up(B_v2)``, with ``m_seg`` MediaPipe's selfie
  segmenter's matte of the full-size photo (:func:`bokeh.runtimes.segmenter.default_segmenter`) and
  ``B_v2`` v2's defocus layer (the composite of issue 30's table).
* ``v4``: the v4 network given the segmenter's matte (at its working size) as its ``subject`` input,
  its own matte (guided upsampling).
* ``subject over v4``: ``m_seg * photo + (1 - m_seg) * up(B_v4)``.
* ``v4 subject=off``: v4 with an all-zero subject plane, its own matte.

Scores (all at the photos' own size, f/1.8, untapped):

* held-out portraits (:func:`bokeh.evaluate.portraits.score_portrait`): matte IoU of the matte used
  (``m > 0.5`` at the photo's size) with the person mask; detail kept in the person and on the
  textured background (medians per set as the portrait benchmark gives them).
* real pairs at f/1.8 (:func:`bokeh.evaluate.real.score_pair`): all-pixel PSNR per pair (tone-matched),
  in focus / defocused by the subject masks, and the mean.
* the synthetic validation scenes of ``experiment=reference_v4`` (32 scenes, 256 x 384, seed 3): PSNR
  all / in focus (r < 1 px) / defocused (r >= 4 px), rendered at their own size.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time

import numpy as np
import torch

from bokeh import composite, metrics
from bokeh.data.transforms import unpad
from bokeh.images import from_tensor, to_tensor
from bokeh.render.fit import pad_to, plan_for, resize
from bokeh.runtimes.segmenter import default_segmenter

METHODS = ("v2", "subject over v2", "v4", "subject over v4", "v4 subject=off")
SHORT_SIDE = 256  # the scale both models were trained at


def segment(photo: torch.Tensor) -> torch.Tensor:
    """The segmenter's matte of ``photo`` ``(1, 3, H, W)`` in [-1, 1]: ``(1, 1, H, W)`` in [0, 1]."""
    return default_segmenter().matte(photo)


def layers_at_work(model, photo: torch.Tensor, plan, subject: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The model's layers at the working size (padding cut off); ``subject`` (full size, or None) is
    turned, resized and padded as the photo is."""
    turned = torch.rot90(photo, 1, dims=(2, 3)) if plan.rotate else photo
    x = pad_to(resize(turned, plan.work), plan.canvas)
    controls = {"aperture": torch.tensor([[1.8]])}
    if subject is not None:
        s = torch.rot90(subject, 1, dims=(2, 3)) if plan.rotate else subject
        s = torch.nn.functional.interpolate(s, size=plan.work, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
        controls["subject"] = pad_to(s, plan.canvas)
    with torch.inference_mode():
        layers = model.layers(x, **controls)
    return {"matte": unpad(layers.matte, plan.work), "background": unpad(layers.background, plan.work)}


def render(model, photo: torch.Tensor, m_seg: torch.Tensor, how: str, subject: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One method on one photo: ``(output (1, 3, H, W) in [-1, 1], the matte used (1, 1, H, W))``.

    ``how``: ``own`` (the model's own matte, guided-upsampled) or ``seg`` (``m_seg`` over the model's ``B``)."""
    plan = plan_for(tuple(photo.shape[-2:]), None, SHORT_SIDE)
    layers = layers_at_work(model, photo, plan, subject)
    turned = torch.rot90(photo, 1, dims=(2, 3)) if plan.rotate else photo
    if how == "own":
        output, matte = composite.full_size(turned, layers["matte"], layers["background"])
    else:
        matte = torch.rot90(m_seg, 1, dims=(2, 3)) if plan.rotate else m_seg
        output = matte * turned + (1 - matte) * composite.upsample_background(layers["background"], tuple(turned.shape[-2:]))
    if plan.rotate:
        output, matte = torch.rot90(output, -1, dims=(2, 3)), torch.rot90(matte, -1, dims=(2, 3))
    return output.clamp(-1, 1), matte


def method_renders(v2, v4) -> dict:
    """``{method: f(photo uint8 (H, W, 3)) -> (output uint8, matte (H, W))}``."""
    def make(model, how, subject_mode):
        def run(image: np.ndarray):
            photo = to_tensor(image)[None]
            m_seg = segment(photo)
            subject = {"seg": m_seg, "off": torch.zeros_like(m_seg), None: None}[subject_mode]
            output, matte = render(model, photo, m_seg, how, subject)
            return from_tensor(output[0]), matte[0, 0]
        return run

    return {"v2": make(v2, "own", None), "subject over v2": make(v2, "seg", None), "v4": make(v4, "own", "seg"),
            "subject over v4": make(v4, "seg", "seg"), "v4 subject=off": make(v4, "own", "off")}


def method_name(text: str) -> str:
    """``subject-over-v2`` -> ``subject over v2``; ``v4-subject-off`` -> ``v4 subject=off``."""
    return {"v4-subject-off": "v4 subject=off"}.get(text, text.replace("-", " "))


def portraits(folder: str, count: int, renders: dict) -> dict:
    from bokeh.data.portraits import list_portraits
    from bokeh.evaluate.portraits import score_portrait

    photos = list_portraits(folder)[:count]
    rows = {name: [] for name in renders}
    for portrait in photos:
        for name, run in renders.items():
            row = score_portrait(portrait, lambda image, focus, aperture: run(image), tapped=False)
            rows[name].append(row["auto"])
    summary = {}
    for name, values in rows.items():
        summary[name] = {key: {"mean": statistics.fmean(v), "median": statistics.median(v), "photos": len(v)}
                         for key in ("matte_iou", "detail_subject", "detail_background")
                         for v in [[r[key] for r in values if not math.isnan(r[key])]] if v}
    return {"photos": len(photos), "summary": summary}


def real_pairs(folder: str, renders: dict) -> dict:
    from bokeh.data.real_pairs import EBB_APERTURE, list_real_pairs
    from bokeh.evaluate.real import score_pair

    pairs = list_real_pairs(folder, EBB_APERTURE, (1.8,))
    table = {}
    for pair in pairs:
        row = {}
        for name, run in renders.items():
            scored = score_pair(pair, lambda image, focus, aperture: run(image)[0], baselines=name == next(iter(renders)))
            row[name] = {k: scored["model"][k] for k in ("psnr", "psnr_in_focus", "psnr_defocus", "detail_in_focus", "detail_defocus")}
            if "gaussian blur" in scored:
                row["best blur"] = {k: scored["gaussian blur"][k] for k in ("psnr", "psnr_in_focus", "psnr_defocus")}
        table[pair.name] = row
    methods = list(next(iter(table.values())))
    means = {m: {k: statistics.fmean(table[p][m][k] for p in table if not math.isnan(table[p][m][k]))
                 for k in table[next(iter(table))][m]} for m in methods}
    return {"pairs": table, "means": means}


def synthetic(v2, v4, scenes: int = 32) -> dict:
    from bokeh.data.datamodules import SyntheticDataModule

    data = SyntheticDataModule(n=3032, size=(256, 384), val_count=32, crop_size=(256, 256), batch_size=2, seed=3,
                               scene={"f_number": [1.8, 11.0], "reference_share": 0.35}, subject=True)
    data.setup("validate")
    sums = {name: {"psnr": [], "psnr_in_focus": [], "psnr_defocus": []} for name in METHODS}
    for i in range(min(scenes, len(data.val_set))):
        sample = data.val_set[i]
        x, target, coc, m_seg = sample["input"][None], sample["target"][None], sample["coc"][None], sample["subject"][None]
        aperture = sample["aperture"][None]
        with torch.inference_mode():
            l2 = v2.layers(x, aperture=aperture)
            l4 = v4.layers(x, aperture=aperture, subject=m_seg)
            l4off = v4.layers(x, aperture=aperture)
        outputs = {"v2": l2.image, "subject over v2": m_seg * x + (1 - m_seg) * l2.background, "v4": l4.image,
                   "subject over v4": m_seg * x + (1 - m_seg) * l4.background, "v4 subject=off": l4off.image}
        size = tuple(int(v) for v in sample["size"])
        target_u = metrics.to_unit_range(unpad(target, size))
        for name, output in outputs.items():
            output_u = metrics.to_unit_range(unpad(output.clamp(-1, 1), size))
            sums[name]["psnr"].append(float(metrics.psnr(output_u, target_u)))
            split = metrics.psnr_split(output_u, target_u, unpad(coc, size))
            for key in ("in_focus", "defocus"):
                if torch.isfinite(split[key]).all():
                    sums[name][f"psnr_{key}"].append(float(split[key]))
    return {name: {k: statistics.fmean(v) for k, v in values.items()} for name, values in sums.items()}


def main(argv: list[str]) -> int:
    from bokeh.checkpoint import load_generator

    args = dict(a.split("=", 1) for a in argv)
    unknown = set(args) - {"v4", "v2", "portraits", "real", "count", "out", "synthetic", "methods", "scenes"}
    if unknown or "v4" not in args:
        print(f"usage: {__doc__.strip().splitlines()[2].strip()} (unknown: {sorted(unknown)})", file=sys.stderr)
        return 2
    torch.set_grad_enabled(False)
    v2, v4 = load_generator(args.get("v2", "reference")), load_generator(args["v4"])
    if not v4.contract.subject:
        print(f"v4={args['v4']} takes no subject input", file=sys.stderr)
        return 2
    renders = method_renders(v2, v4)
    if "methods" in args:
        chosen = [method_name(m) for m in args["methods"].split(",")]
        if set(chosen) - set(renders):
            print(f"methods: choose from {', '.join(m.replace(' ', '-') for m in renders)}", file=sys.stderr)
            return 2
        renders = {m: renders[m] for m in chosen}
    results: dict = {"v4": args["v4"], "v2": args.get("v2", "reference")}
    started = time.perf_counter()
    if args.get("synthetic", "true") == "true":
        results["synthetic"] = {m: v for m, v in synthetic(v2, v4, int(args.get("scenes", 32))).items() if m in renders}
        print("synthetic validation, PSNR dB all / in focus / defocused:")
        for name, v in results["synthetic"].items():
            print(f"  {name:<17} {v['psnr']:.2f} / {v['psnr_in_focus']:.2f} / {v['psnr_defocus']:.2f}")
    if "real" in args:
        results["real"] = real_pairs(args["real"], renders)
        print("real pairs f/1.8, all-pixel PSNR dB (tone-matched) per pair:")
        methods = list(results["real"]["means"])
        print("  " + f"{'pair':<22}" + "".join(f"{m:>18}" for m in methods))
        for pair, row in results["real"]["pairs"].items():
            print("  " + f"{pair:<22}" + "".join(f"{row[m]['psnr']:>18.2f}" for m in methods))
        print("  " + f"{'mean':<22}" + "".join(f"{results['real']['means'][m]['psnr']:>18.2f}" for m in methods))
        print("  " + f"{'mean in focus':<22}" + "".join(f"{results['real']['means'][m]['psnr_in_focus']:>18.2f}" for m in methods))
        print("  " + f"{'mean defocused':<22}" + "".join(f"{results['real']['means'][m]['psnr_defocus']:>18.2f}" for m in methods))
        print("  " + f"{'detail in focus':<22}" + "".join(f"{results['real']['means'][m].get('detail_in_focus', float('nan')):>18.2f}" for m in methods))
    if "portraits" in args:
        results["portraits"] = portraits(args["portraits"], int(args.get("count", 300)), renders)
        print(f"held-out portraits ({results['portraits']['photos']}), mean (median): matte IoU, detail person, detail textured background")
        for name, v in results["portraits"]["summary"].items():
            print(f"  {name:<17} " + "  ".join(f"{v[k]['mean']:.3f} ({v[k]['median']:.3f})" for k in ("matte_iou", "detail_subject", "detail_background")))
    print(f"({time.perf_counter() - started:.0f} s)")
    if "out" in args:
        with open(args["out"], "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
