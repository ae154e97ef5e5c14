"""``make demo``: the whole job on the embedded default data, on a CPU, in minutes.

1. writes the synthetic pair set (if not cached) and pretrains the demo Glass-Net
   (``experiment=demo``: 1,600 steps, 6.6 minutes on 2 idle cores, stopped at ``minutes`` at
   the latest);
2. scores the best checkpoint on held-out synthetic pairs next to the identity and best-blur
   baselines (:mod:`bokeh.evaluate`);
3. renders a real photo shipped by scikit-image (the astronaut) and writes ``input | output``;
4. converts the checkpoint to TFLite (float32 / float16) at a small size and verifies it.

Everything lands under ``outputs/demo/`` (git-ignored); the last lines printed say where.
Options (``key=value``): ``minutes=10`` cap on the training time, ``tflite=true``, ``out=outputs/demo``,
``photo=astronaut``; any other ``group.key=value`` is passed to the training config
(e.g. ``data.n=40``). ``out=`` may be any path and is checked writable before anything runs (exit
status 2); Ctrl-C stops with one line saying which steps finished (exit status 130), and the
temporary files of the step it interrupted (synthetic set, export) are removed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytorch_lightning  # noqa: F401  (import order: before TensorFlow, see TOOLCHAIN.md)
from hydra import compose, initialize_config_dir

from bokeh.checkpoint import load_generator
from bokeh.cli import EXIT_SETTINGS, OutputFolderError, check_output_folder, hydra_quote, interruptible, quote_path_overrides, run_child, write_text_atomic
from bokeh.evaluate import evaluate_generator, format_table, validation_samples
from bokeh.train import CONF_DIR, PATH_KEYS, run

DEFAULTS = {"minutes": "10", "tflite": "true", "out": "outputs/demo", "photo": "astronaut"}


def parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """``(options, training overrides)``: ``key=value`` over :data:`DEFAULTS`, dotted keys to Hydra."""
    options, overrides = dict(DEFAULTS), []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and "." in key:
            overrides.append(arg)
        elif sep and key in DEFAULTS:
            options[key] = value
        else:
            raise SystemExit(
                f"unknown argument {arg!r}; options: " + " ".join(f"{k}={v}" for k, v in DEFAULTS.items())
                + " and training overrides such as data.n=40"
            )
    return options, overrides


def train_demo(out: Path, minutes: float, extra: list[str]):
    """Pretrain ``experiment=demo`` (its steps, ``minutes`` at most); returns (config, best checkpoint path)."""
    budget = time.strftime("%H:%M:%S", time.gmtime(int(minutes * 60)))
    overrides = ["experiment=demo", f"output_dir={hydra_quote(str(out / 'pretrain'))}", f"trainer.max_time=00:{budget}",
                 *quote_path_overrides(extra, PATH_KEYS)]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    trainer = run(cfg)
    callback = trainer.checkpoint_callback
    if callback is not None and (callback.best_model_path or callback.last_model_path):
        return cfg, Path(callback.best_model_path or callback.last_model_path)
    # the time budget ran out before any checkpoint was written: keep what was trained
    fallback = out / "pretrain" / "checkpoints" / "end.ckpt"
    trainer.save_checkpoint(fallback)
    return cfg, fallback


def render_photo(checkpoint: Path, photo: str, out: Path) -> Path:
    """``input | output`` of a scikit-image photo through the trained generator, as a PNG."""
    import numpy as np
    import skimage.data

    from bokeh.images import write_image
    from bokeh.render import TorchBackend, render_to_uint8

    image = np.ascontiguousarray(getattr(skimage.data, photo)()[..., :3])
    output = render_to_uint8(image, TorchBackend(load_generator(checkpoint)))
    return write_image(out / f"{photo}_side_by_side.png", np.concatenate([image, output], axis=1))


def main(argv: list[str] | None = None) -> None:
    options, overrides = parse(sys.argv[1:] if argv is None else argv)
    out = Path(options["out"]).resolve()
    try:
        check_output_folder(out, "out")
    except OutputFolderError as error:
        print(f"bokeh.demo: {error}", file=sys.stderr)
        raise SystemExit(EXIT_SETTINGS) from None
    finished: list[str] = []  # what is done, for the line printed on Ctrl-C
    with interruptible("bokeh.demo", lambda: "finished: " + (", ".join(finished) or "nothing yet")):
        _steps(options, overrides, out, finished)


def _steps(options: dict[str, str], overrides: list[str], out: Path, finished: list[str]) -> None:
    """Train, score, render, export; each finished step is appended to ``finished``."""
    started = time.perf_counter()
    cfg, checkpoint = train_demo(out, float(options["minutes"]), overrides)
    trained = time.perf_counter() - started
    finished.append(f"training ({checkpoint})")

    import hydra

    results = evaluate_generator(load_generator(checkpoint), validation_samples(hydra.utils.instantiate(cfg.data)))
    results["model"]["checkpoint"] = str(checkpoint)
    results["model"]["train_seconds"] = round(trained, 1)
    write_text_atomic(out / "metrics.json", json.dumps(results, indent=2))
    finished.append(f"scores ({out / 'metrics.json'})")
    picture = render_photo(checkpoint, options["photo"], out)
    finished.append(f"photo ({picture})")

    exported = None
    if options["tflite"].lower() in {"1", "true", "yes"}:
        # its own process: TensorFlow and the conversion's memory stay out of this one; on Ctrl-C it
        # is waited for, so it removes its temporary folder (bokeh.cli.run_child)
        run_child([sys.executable, "-m", "bokeh.export", f"ckpt={checkpoint}", f"out={out / 'tflite'}", "size=256x384"])
        exported = out / "tflite"

    print("\n" + format_table(results))
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s")
    print(f"  checkpoint : {checkpoint}")
    print(f"  metrics    : {out / 'metrics.json'}")
    print(f"  photo      : {picture}")
    if exported:
        print(f"  tflite     : {exported}")


if __name__ == "__main__":
    main()
