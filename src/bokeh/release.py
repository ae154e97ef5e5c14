"""Ship a trained checkpoint as a named model of the package (done once per retrain, then committed).

    python -m bokeh.release ship ckpt=outputs/reference/pretrain/checkpoints/last.ckpt [name=reference]
    python -m bokeh.release show [name=reference]

The release tool lives apart from the weights library (:mod:`bokeh.pretrained`, below the checkpoint
loader and the renderer): it scores with the evaluation and the renderer, which import that library.
``python -m bokeh.pretrained ship|show`` is the same command (kept for earlier instructions).

``ship`` writes ``src/bokeh/pretrained/<name>.pt`` (float16 state dict) and ``<name>.json``: the
model settings, how it was trained (the run's command line, steps, wall time, precision, CPU: read
from the checkpoint and the run's Hydra folder) and its scores on the demo's held-out synthetic pairs
(split into in-focus and defocused pixels, with the baselines), measured here with the float16
weights as shipped. The files are written only once the scores are in, atomically; replacing a
shipped name needs ``overwrite=true``; ``ckpt=``, ``name=`` and ``real=`` are checked first (one
sentence, exit status 2). ``show`` prints the description of a shipped model.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from bokeh import pretrained
from bokeh.cli import json_text

USAGE = "usage: python -m bokeh.release ship ckpt=PATH [name=reference] [real=FOLDER] [overwrite=false] | show [[name=]reference]"
#: The terms of the photo sources the project knows, by a word in the source folder's path (lower case)
SOURCE_TERMS = {
    "bsds": "the Berkeley Segmentation Data Set 500 (Arbelaez et al., TPAMI 2011; Corel photos, non-commercial research and education)",
    "portrait": "the PFCN portraits (Shen et al., Eurographics 2016; academic use only, cite the authors)",
}


def photo_pairs_licence(folders: list[str]) -> str:
    """What a model trained on the photo-pair sets ``folders`` may be used for: its photos' terms,
    read from each set's ``meta.json`` (``src``); a source the project does not know is named, its
    own terms apply. The narrowest terms come first."""
    sources = []
    for folder in folders:
        meta = Path(folder).expanduser() / "meta.json"
        try:
            src = str(json.loads(meta.read_text()).get("src") or folder)
        except (OSError, ValueError):
            src = str(folder)
        known = [terms for word, terms in SOURCE_TERMS.items() if word in src.lower()]
        sources += known or [f"photos from {src} (their own terms apply)"]
    sources = list(dict.fromkeys(sources))
    narrowest = ("academic use only" if any("academic use only" in s for s in sources)
                 else "non-commercial research and education" if any("non-commercial" in s for s in sources)
                 else "the terms of the photos named here")
    return f"{narrowest}: trained on pairs made from " + "; ".join(sources) + " and on synthetic scenes"


#: The held-out synthetic pairs a shipped model is scored on: name -> (what they are, config overrides)
SPLITS = {
    "demo": ("experiment=demo validation split (set 0, 16 pairs of 256 x 384, f/1.8): never trained on", ["experiment=demo"]),
    "reference_v1": ("experiment=reference_v1 validation split (set 1, 32 pairs of 256 x 384, f/1.8): the v1 reference's held-out pairs",
                     ["experiment=reference_v1"]),
    "reference": ("experiment=reference validation split (set 3, 32 pairs of 256 x 384, f/1.8..f/11): held out of its training",
                  ["experiment=reference"]),
}


def score_real_folder(generator, folder: Path, short_side: int | None = None) -> dict:
    """A model about to be shipped (its float16 weights, as :func:`bokeh.pretrained.load` gives them)
    on a folder of real pairs as ``bokeh.render ckpt=<name>`` renders them by default (at its
    ``short_side``), scored by the real-pair benchmark (:mod:`bokeh.evaluate.real`): untapped, and (for a
    model with the controls) tapped at each subject mask's interior point at each target's f-number;
    means per f-number, with the identity and best-blur baselines."""
    from bokeh.evaluate.real import backend_render, evaluate_real
    from bokeh.data.real_pairs import list_real_pairs
    from bokeh.render import TorchBackend
    from bokeh.runtimes import TorchRuntime

    backend = TorchBackend(TorchRuntime(generator, 0, "auto"), name="torch (the model being shipped)", short_side=short_side)
    contract = backend.contract
    render = backend_render(backend)  # as bokeh.render renders by default

    pairs = list_real_pairs(folder)
    runs = {"auto": dict(tap=False, aperture=contract.aperture)}
    if contract.focus:
        runs["tapped"] = dict(tap=True, aperture=contract.aperture)
    results = {"pairs": f"{len(pairs)} real pairs: {', '.join(sorted({p.name for p in pairs}))}"}
    for run, options in runs.items():
        results[run] = evaluate_real(pairs, render, baselines=run == "auto", **options)["means"]
    return results


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


def ship(ckpt: Path, name: str, real: Path | None = None) -> Path:
    """Write ``<name>.pt`` and ``<name>.json`` from ``ckpt`` (see the module docstring); with ``real``,
    also score it on that folder of real pairs (:func:`score_real_folder`). The float16 weights are
    scored first, in memory; the files are written at the end, atomically (an interrupt or a failure
    while scoring leaves the shipped files as they were)."""
    import torch
    from hydra import compose, initialize_config_dir

    from bokeh import cpu
    from bokeh.checkpoint import generator_state, read_checkpoint
    from bokeh.evaluate.synthetic import evaluate_generator, validation_samples
    from bokeh.models.controls import REFERENCE_F_NUMBER
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
        "data": {key: data[key] for key in ("_target_", "root", "n", "size", "seed", "val_count", "crop_size", "batch_size", "scene",
                                            "photo_pairs", "photo_share", "photo_weights", "epoch_size", "focus_auto_share") if key in data},
        "controls": {"inputs": list(GlassNet(**settings).contract.names), "reference_f_number": REFERENCE_F_NUMBER},
    }
    if data.get("photo_pairs"):
        from bokeh.data.datamodules import photo_folders

        description["licence"] = photo_pairs_licence(photo_folders(data["photo_pairs"]))
    shipped = GlassNet(**settings)  # the float16 weights as shipped (bokeh.pretrained.load reads them back as float32)
    shipped.load_state_dict({key: value.detach().to(torch.float16).float() for key, value in generator.state_dict().items()}, strict=True)
    shipped.eval()
    started = time.perf_counter()
    record = {"scores": {}}
    for split, (what, overrides) in SPLITS.items():
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            # the held-out pairs alone, rendered when loaded: no need to write a whole training set
            cfg = compose("train", overrides=[*overrides, "output_dir=.", "data.on_the_fly=true", "data.photo_pairs=null"])
        samples = validation_samples(hydra.utils.instantiate(cfg.data))
        scores = evaluate_generator(shipped, samples)
        record["scores"][split] = {"pairs": what, **scores}
    if real is not None:
        record["scores"]["real pairs"] = score_real_folder(shipped, real, description["input"]["short_side"])
    from bokeh.cli import ignoring_interrupts

    with ignoring_interrupts():  # the scores are in: the two files are written together, Ctrl-C or not
        path = pretrained.save(name, generator, settings, description | record, folder=pretrained.FOLDER)
    size = path.with_suffix(".pt").stat().st_size
    print(f"shipped {name}: {path} and {path.with_suffix('.pt')} ({size / 2**20:.1f} MiB); scored in {time.perf_counter() - started:.0f} s")
    return path


def check_ship_options(options: dict[str, str]) -> tuple[Path, str, Path | None]:
    """``(ckpt, name, real)`` of ``ship``, every one checked before any work.

    Raises:
        ValueError: one sentence naming the option: ``ckpt=`` missing, a folder, not a ``.ckpt`` or
            not a training checkpoint; ``name=`` not a plain name, or shipped already without
            ``overwrite=true``; ``real=`` not a folder of real pairs.
    """
    import re

    from bokeh.checkpoint import generator_state, read_checkpoint
    from bokeh.cli import parse_bool
    from bokeh.model_files import CheckpointError

    if not options.get("ckpt"):
        raise ValueError("ckpt= is required: the .ckpt written by python -m bokeh.train, e.g. ckpt=outputs/reference/pretrain/checkpoints/last.ckpt")
    ckpt = Path(options["ckpt"]).expanduser()
    if ckpt.is_dir():
        raise ValueError(f"ckpt={ckpt} is a folder: pass the checkpoint file in it, e.g. ckpt={ckpt / 'checkpoints' / 'last.ckpt'}")
    if not ckpt.is_file():
        raise ValueError(f"ckpt={ckpt}: no such file; pass the .ckpt written by python -m bokeh.train")
    if ckpt.suffix.lower() != ".ckpt":
        raise ValueError(f"ckpt={ckpt} is not a training checkpoint (.ckpt): ship the .ckpt written by python -m bokeh.train, "
                         f"not an image or an exported model")
    try:
        generator_state(read_checkpoint(ckpt), ckpt)
    except CheckpointError as error:
        raise ValueError(str(error).splitlines()[0]) from None
    name = options.get("name", "reference")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        raise ValueError(f"name={name!r}: a shipped model's name is letters, digits, '-' and '_' (it names <name>.pt and <name>.json)")
    overwrite = parse_bool("overwrite", options.get("overwrite", "false"))
    existing = [path for path in (pretrained.FOLDER / f"{name}.pt", pretrained.FOLDER / f"{name}.json") if path.exists()]
    if existing and not overwrite:
        raise ValueError(f"name={name}: a model of that name is shipped already ({existing[0]}): pass overwrite=true to replace it, "
                         f"or choose another name=")
    real = None
    if options.get("real"):
        from bokeh.data.real_pairs import list_real_pairs

        real = Path(options["real"]).expanduser()
        list_real_pairs(real)  # a folder not in the layout: one sentence now, not after minutes of scoring
    return ckpt, name, real


def options(command: str):
    """The options of ``bokeh.release ship`` / ``show``, each declared once (:mod:`bokeh.options`)."""
    from bokeh.options import REQUIRED, Option, boolean, model, path, text

    name = Option("name", text, "reference", "the shipped model's name")
    if command == "show":
        return (name,)
    return (Option("ckpt", model, REQUIRED, "the training checkpoint to ship"), name,
            Option("real", path, None, "a folder of real pairs to score it on too"),
            Option("overwrite", boolean, False, "replace a model shipped under that name"))


def main(argv: list[str] | None = None) -> int:
    from bokeh.options import OptionError, help_text, parse, wants_help

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("ship", "show"):
        if wants_help(args):
            print(USAGE)
            return 0
        print(f"bokeh.release: {'say ship or show' if not args else repr(args[0]) + ' is not ship or show'}; {USAGE}", file=sys.stderr)
        return 2
    command, rest = args[0], args[1:]
    if wants_help(rest):
        print(help_text(USAGE, options(command)))
        return 0
    positional = [a for a in rest if "=" not in a]
    if command == "show" and len(positional) == 1:  # show reference
        rest = [f"name={positional[0]}" if a == positional[0] else a for a in rest]
    try:
        settings, _ = parse(rest, options(command), USAGE)
    except OptionError as error:
        print(f"bokeh.release {command}: {error}", file=sys.stderr)
        return 2
    name = settings["name"]
    if command == "show":
        try:
            description = pretrained.meta(name)
        except pretrained.PretrainedError as error:
            print(f"bokeh.release: {error}", file=sys.stderr)
            return 2
        try:
            print(json.dumps(description, indent=2))
            sys.stdout.flush()
        except BrokenPipeError:  # `show | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    try:
        from bokeh.model_files import check_model_file

        check_model_file(settings["ckpt"], "ckpt", suffixes=(".ckpt",))  # the one check of what a model file is
        ckpt, name, real = check_ship_options({"ckpt": settings["ckpt"], "name": name, "overwrite": str(settings["overwrite"]).lower(),
                                               **({"real": str(settings["real"])} if settings["real"] is not None else {})})
    except (ValueError, OSError) as error:  # CheckpointError is a ValueError; a real= folder not in the layout an OSError
        print(f"bokeh.release ship: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    from bokeh.cli import interruptible

    with interruptible("bokeh.release ship", lambda: f"nothing was shipped: {pretrained.FOLDER / name}.pt and .json are as they were"):
        ship(ckpt, name, real)  # minutes of scoring: Ctrl-C is one line, exit status 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
