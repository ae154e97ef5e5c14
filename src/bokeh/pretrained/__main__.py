"""Ship a trained checkpoint as a named model of the package (done once per retrain, then committed).

    python -m bokeh.pretrained ship ckpt=outputs/reference/pretrain/checkpoints/last.ckpt [name=reference]
    python -m bokeh.pretrained show [name=reference]

``ship`` writes ``src/bokeh/pretrained/<name>.pt`` (float16 state dict) and ``<name>.json``: the
model settings, how it was trained (the run's command line, steps, wall time, precision, CPU: read
from the checkpoint and the run's Hydra folder) and its scores on the demo's held-out synthetic pairs
(split into in-focus and defocused pixels, with the baselines), measured here with the float16
weights as shipped. ``show`` prints the description of a shipped model.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bokeh import pretrained

USAGE = "usage: python -m bokeh.pretrained ship ckpt=PATH [name=reference] | show [name=reference]"


def training_record(ckpt: Path, checkpoint: dict) -> dict:
    """What the checkpoint and its run folder say about how the model was trained."""
    run = ckpt.resolve().parent.parent  # <run>/checkpoints/<file>.ckpt
    overrides = run / ".hydra" / "overrides.yaml"
    command = "python -m bokeh.train"
    if overrides.is_file():
        import yaml

        command += " " + " ".join(yaml.safe_load(overrides.read_text()) or [])
    loops = checkpoint.get("loops", {}).get("fit_loop", {})
    record = {
        "command": command,
        "global_step": int(checkpoint.get("global_step", 0)),
        "epoch": int(checkpoint.get("epoch", 0)),
        "checkpoint": ckpt.name,
    }
    timer = next((v for k, v in checkpoint.get("callbacks", {}).items() if k.startswith("Timer")), None)
    if timer and "time_elapsed" in timer:
        record["train_seconds"] = round(float(timer["time_elapsed"].get("train", 0.0)), 1)
    if loops:
        record["batches_seen"] = int(loops.get("epoch_loop.batch_progress", {}).get("total", {}).get("completed", 0))
    started = run / ".hydra" / "config.yaml"  # written when the run started
    if started.is_file():  # wall time from the run's start to this checkpoint (validation included)
        record["wall_seconds"] = round(ckpt.stat().st_mtime - started.stat().st_mtime)
    return record


def ship(ckpt: Path, name: str) -> Path:
    """Write ``<name>.pt`` and ``<name>.json`` from ``ckpt`` (see the module docstring)."""
    import torch
    from hydra import compose, initialize_config_dir

    from bokeh import cpu
    from bokeh.checkpoint import generator_state, read_checkpoint
    from bokeh.evaluate import baselines, score, validation_samples
    from bokeh.models.glassnet import GlassNet
    from bokeh.train import CONF_DIR

    import hydra
    import yaml

    checkpoint = read_checkpoint(ckpt)
    settings, state = generator_state(checkpoint, ckpt)
    generator = GlassNet(**settings)
    generator.load_state_dict(state, strict=True)
    generator.eval()
    run_config = ckpt.resolve().parent.parent / ".hydra" / "config.yaml"  # the training run's data settings
    data = yaml.safe_load(run_config.read_text()).get("data", {}) if run_config.is_file() else {}
    size = [int(v) for v in data.get("size") or data.get("crop_size") or (256, 384)]
    record = training_record(ckpt, checkpoint)
    description = {
        "input": {"layout": "NCHW RGB", "value_range": [-1.0, 1.0], "multiple_of": 8,
                  "trained_at": [int(v) for v in data.get("crop_size") or size], "short_side": min(size)},
        "training": record | {"cpu": cpu.describe(), "torch": torch.__version__},
        "data": {key: data[key] for key in ("_target_", "root", "n", "size", "seed", "val_count", "crop_size", "batch_size", "scene")
                 if key in data},
    }
    path = pretrained.save(name, generator, settings, description)
    shipped = pretrained.load(name)  # score the float16 weights as shipped
    started = time.perf_counter()
    record = json.loads(path.read_text())
    record["scores"] = {}
    splits = {"demo": ("experiment=demo validation split (set 0, 16 pairs of 256 x 384): never trained on", ["experiment=demo"]),
              "reference": ("experiment=reference validation split (set 1, 32 pairs of 256 x 384): held out of its training",
                            ["experiment=reference"])}
    for split, (what, overrides) in splits.items():
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=[*overrides, "output_dir=."])
        samples = validation_samples(hydra.utils.instantiate(cfg.data))
        scores = {"model": score(lambda image: shipped(image)[0], samples)} | baselines(samples)
        record["scores"][split] = {"pairs": what, **scores}
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"shipped {name}: {path} and {path.with_suffix('.pt')} ({record['bytes'] / 2**20:.1f} MiB); scored in {time.perf_counter() - started:.0f} s")
    return path


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("ship", "show"):
        print(USAGE, file=sys.stderr)
        return 2
    options = dict(a.split("=", 1) for a in args[1:] if "=" in a)
    name = options.get("name", "reference")
    if args[0] == "show":
        print(json.dumps(pretrained.meta(name), indent=2))
        return 0
    if "ckpt" not in options:
        print(USAGE, file=sys.stderr)
        return 2
    ship(Path(options["ckpt"]), name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
