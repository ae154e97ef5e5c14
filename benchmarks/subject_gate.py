"""The subject gate (issue 30) on the synthetic validation scenes, through the one road (``render_photo``).

    .venv/bin/python benchmarks/subject_gate.py [scenes=32] [portraits=FOLDER] [real=FOLDER] [out=gate.json]

Synthetic: the validation scenes of ``experiment=reference_v4`` (32 scenes, 256 x 384, seed 3, f/1.8 to
f/11), each rendered by ``bokeh.render.render_photo`` with the shipped reference at the scene's own
f-number: ``subject=off`` (v2 alone), ``subject=person`` (the gate, :func:`bokeh.render.fit.subject_trusted`)
and ``subject=auto`` (every subject matte trusted). PSNR dB
all / in focus (r < 1 px) / defocused (r >= 4 px), means over the scenes (the first 16 too, as issue
30's table), and per scene the gate's evidence (:func:`bokeh.render.fit.subject_evidence`).

``portraits=`` / ``real=``: the gate's evidence and verdict for every photo of a portrait folder
(``images/``) or real-pair folder (its inputs), from the segmenter alone at the working size
``render_photo`` gives it (the scores themselves: ``python -m bokeh.evaluate ... subject=auto|off``).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time

import numpy as np
import torch

from bokeh import metrics
from bokeh.data.transforms import unpad
from bokeh.images import from_tensor, read_rgb, to_tensor
from bokeh.render import fit, load_backend, render_photo

RUNS = fit.SUBJECT_MODES[::-1]  # off, person (the gate), auto (every matte trusted)


def synthetic(backend, scenes: int) -> list[dict]:
    from bokeh.data.datamodules import SyntheticDataModule

    data = SyntheticDataModule(n=3032, size=(256, 384), val_count=32, crop_size=(256, 256), batch_size=2, seed=3,
                               scene={"f_number": [1.8, 11.0], "reference_share": 0.35})
    data.setup("validate")
    rows = []
    for i in range(min(scenes, len(data.val_set))):
        sample = data.val_set[i]
        size = tuple(int(v) for v in sample["size"])
        image = from_tensor(unpad(sample["input"][None], size)[0])
        target = metrics.to_unit_range(unpad(sample["target"][None], size))
        coc = unpad(sample["coc"][None], size)
        aperture = max(1.8, round(float(sample["aperture"].reshape(-1)[0]), 3))  # the scene's f-number (float32 -> 1.8 exactly)
        row: dict = {"scene": i, "aperture": aperture}
        for run in RUNS:
            rendered = render_photo(image, backend, subject=run, aperture=aperture)
            output = metrics.to_unit_range(rendered.image[None])
            split = metrics.psnr_split(output, target, coc)
            row[run] = {"psnr": float(metrics.psnr(output, target)), "in_focus": float(split["in_focus"]),
                        "defocus": float(split["defocus"])}
            if run == "person":
                row["evidence"], row["trusted"] = fit.subject_evidence(rendered.layers["subject"]), rendered.decision == "subject"
        rows.append(row)
        print(f"  scene {i:2d} f/{aperture:<5.2f} " + "  ".join(f"{k} {v:.3f}" for k, v in row["evidence"].items())
              + f"  {'trusted' if row['trusted'] else 'not trusted':<11}  person - off {row['person']['psnr'] - row['off']['psnr']:+.2f} dB"
              + f" (auto - off {row['auto']['psnr'] - row['off']['psnr']:+.2f})", flush=True)
    return rows


def means(rows: list[dict]) -> dict:
    def mean(values):
        values = [v for v in values if not math.isnan(v)]
        return statistics.fmean(values) if values else float("nan")
    return {run: {key: mean([r[run][key] for r in rows]) for key in ("psnr", "in_focus", "defocus")} for run in RUNS}


def verdicts(backend, images: list[tuple[str, np.ndarray]]) -> list[dict]:
    """The gate on each photo, from the segmenter's matte of the working-size photo alone."""
    segmenter = fit.subject_segmenter(backend)
    rows = []
    for name, image in images:
        plan = fit.plan_for(image.shape[:2], backend.static_size, fit.working_short_side(backend))
        work = fit.resize(to_tensor(image)[None], plan.work)  # upright: a torch backend never turns the photo
        subject = segmenter.matte(work).float().clamp(0.0, 1.0)
        rows.append({"name": name, "evidence": fit.subject_evidence(subject), "trusted": fit.subject_trusted(subject)})
    return rows


def main(argv: list[str]) -> int:
    args = dict(a.split("=", 1) for a in argv)
    unknown = set(args) - {"scenes", "portraits", "real", "out"}
    if unknown:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    torch.set_grad_enabled(False)
    backend = load_backend("reference")
    started = time.perf_counter()
    results: dict = {"gate": fit.SUBJECT_GATE}
    if "portraits" in args or "real" in args:
        if "portraits" in args:
            from bokeh.data.portraits import list_portraits
            images = [(p.name, read_rgb(p.image)) for p in list_portraits(args["portraits"])]
        else:
            from bokeh.data.real_pairs import EBB_APERTURE, list_real_pairs
            images = [(p.name, read_rgb(p.input)) for p in list_real_pairs(args["real"], EBB_APERTURE, (1.8,))]
        rows = verdicts(backend, images)
        results["photos"] = rows
        trusted = sum(r["trusted"] for r in rows)
        print(f"{trusted} of {len(rows)} photos trusted; not trusted: "
              + (", ".join(f"{r['name']} ({', '.join(f'{k} {v:.3f}' for k, v in r['evidence'].items())})" for r in rows if not r["trusted"]) or "none"))
    else:
        print(f"synthetic validation scenes (gate {fit.SUBJECT_GATE}):")
        rows = synthetic(backend, int(args.get("scenes", 32)))
        results["scenes"] = rows
        results["means"] = {f"first {n}": means(rows[:n]) for n in sorted({16, len(rows)}) if n <= len(rows)}
        for subset, table in results["means"].items():
            print(f"{subset} scenes, PSNR dB all / in focus / defocused ({sum(r['trusted'] for r in rows[:int(subset.split()[1])])} trusted):")
            for run, v in table.items():
                print(f"  {run:<16} {v['psnr']:.2f} / {v['in_focus']:.2f} / {v['defocus']:.2f}")
    print(f"({time.perf_counter() - started:.0f} s)")
    if "out" in args:
        with open(args["out"], "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
