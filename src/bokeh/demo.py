"""``make demo``: the whole job on the embedded default data, on a CPU, in minutes.

1. renders photos that ship with scikit-image (astronaut, coffee, chelsea) with the reference model
   shipped in the package (:mod:`bokeh.pretrained`), as ``input | output``, the astronaut at three
   apertures and with two taps (:func:`render_controls`), a portrait that ships with matplotlib
   (Grace Hopper) and a photo without a person as ``input | matte | render`` on the model's own
   guess (``subject=auto``) and with ``subject=off`` (:func:`render_subject`), and scores it on the
   held-out synthetic pairs: real bokeh within a minute;
2. writes the synthetic pair set (if not cached) and pretrains the demo Glass-Net
   (``experiment=demo``, stopped at ``minutes`` at the latest);
3. scores the demo model's best checkpoint on the same pairs, next to the identity, best global
   blur and oracle blur baselines (:mod:`bokeh.evaluate`): PSNR on all pixels, the in-focus ones
   and the strongly defocused ones;
4. renders the same photos (and the subject picture) with the demo model;
5. converts the demo checkpoint to TFLite (float32 / float16) at a small size and verifies it.

Everything lands under ``outputs/demo/`` (git-ignored); the last lines printed say where.
Options (``key=value``): ``minutes=10`` cap on the training time (0 < minutes <= 14 days),
``tflite=true``, ``reference=true`` (step 1), ``out=outputs/demo``, ``photos=astronaut,coffee,chelsea``
(from :data:`PHOTOS`), ``overwrite=false``, ``real=`` (a folder of real photo pairs, e.g. EBB!'s:
step 1 also renders them next to their targets and scores them with the real-pair benchmark); any other ``group.key=value`` is passed to the training
config (e.g. ``data.n=40``). Every option is checked before anything runs (exit status 2, one
line): ``out=`` may be any path and must be writable, and the files of an earlier demo in it are
not replaced unless ``overwrite=true``. Ctrl-C (or SIGTERM, SIGHUP) stops with one line saying which
steps finished (exit status 130; 143, 129), and the temporary files of the step it interrupted
(synthetic set, export) are removed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytorch_lightning  # noqa: F401  (import order: before TensorFlow, see TOOLCHAIN.md)

from bokeh.checkpoint import load_generator
from bokeh.checkpoint_io import CheckpointWriteError
from bokeh.cli import EXIT_SETTINGS, check_given_once, compose_checked, hydra_quote, interruptible, json_text, quote_path_overrides, run_child
from bokeh.files import OutputFolderError, check_output_folder, check_planned, write_text_atomic
from bokeh.evaluate.synthetic import baselines, evaluate_generator, format_table, score, validation_samples
from bokeh.data.pairs import DataLayoutError
from bokeh.train import CONF_DIR, PATH_KEYS, build_module, built, check_config_values, check_data_paths, check_run_folder, run

#: Photos shipped inside scikit-image (no download), by the name of their ``skimage.data`` function
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "retina", "hubble_deep_field", "immunohistochemistry", "camera", "moon",
          "coins", "page", "text", "grass", "gravel", "brick", "cell")
MAX_MINUTES = 14 * 24 * 60
USAGE = ("usage: python -m bokeh.demo [minutes=10] [tflite=true] [reference=true] [out=outputs/demo] "
         "[photos=astronaut,coffee,chelsea] [overwrite=false] [real=FOLDER] [group.key=value ...]")


def parse_photos(text: str) -> list[str]:
    """``astronaut,coffee`` -> the named photos of :data:`PHOTOS`, at least one."""
    from bokeh.options import first_repeat

    photos = [p for p in text.split(",") if p]
    unknown = [p for p in photos if p not in PHOTOS]
    if unknown or not photos:
        raise ValueError(f"{'unknown photo ' + ', '.join(unknown) if unknown else 'no photo named'}; choose from {','.join(PHOTOS)}")
    repeat = first_repeat(photos)
    if repeat:
        raise ValueError(f"{repeat[0]} is named twice: name each photo once")
    return photos


parse_photos.describe = "photo names separated by commas, from " + ",".join(PHOTOS)


def options():
    """The options of ``bokeh.demo``, each declared once (:mod:`bokeh.options`)."""
    from bokeh.options import Option, boolean, number, path

    return (
        Option("minutes", number(0, MAX_MINUTES, low_open=True, what="a number of minutes"), 10.0,
               "cap on the training time (at most 14 days)"),
        Option("tflite", boolean, True, "convert the demo model to TFLite and verify it"),
        Option("reference", boolean, True, "render and score the shipped reference model first"),
        Option("out", path, Path("outputs/demo"), "the folder to write into"),
        Option("photos", parse_photos, ["astronaut", "coffee", "chelsea"], "scikit-image photos to render"),
        Option("overwrite", boolean, False, "replace the files of an earlier demo in out="),
        Option("real", path, None, "a folder of real photo pairs to render and score too"),
    )


def check_options(options: dict) -> dict:
    """The parsed options with ``out`` resolved and ``real`` checked (a folder not in the layout:
    one sentence now, before any work)."""
    checked = dict(options)
    checked["out"] = Path(options["out"]).resolve()
    if options["real"] is not None:
        from bokeh.data.real_pairs import list_real_pairs

        list_real_pairs(options["real"])
    return checked


def real_strip_name(name: str, aperture: float) -> str:
    """The file name of a real pair's ``input | output | target`` strip (:func:`render_real_pairs`); a
    pair name with a slash (``p1 f/1.8``, a photo with targets at several f-numbers) stays one file name."""
    safe = name.replace("/", "").replace("\\", "").replace(" ", "_")
    return f"reference_real_{safe}_f{aperture:g}.png"


def planned_outputs(out: Path, photos: list[str], reference: bool, tflite: bool, real: Path | None = None) -> list[tuple[Path, str]]:
    """``(path, what)`` of the files a demo run writes into ``out`` (:func:`bokeh.files.check_planned`:
    those an earlier run left are not replaced unless overwrite=true)."""
    planned = [(out / "metrics.json", "the scores"), *((out / f"demo_{p}.png", f"the demo model's {p}") for p in photos)]
    planned += [(out / "demo_subject.png", "the demo model's subject picture")]
    if reference:
        planned += [(out / f"reference_{p}.png", f"the reference model's {p}") for p in photos]
        planned += [(out / f"reference_controls_{CONTROLS_PHOTO}.png", "the controls picture")]
        planned += [(out / "reference_subject.png", "the reference model's subject picture")]
        if real is not None:
            from bokeh.data.real_pairs import list_real_pairs

            planned += [(out / real_strip_name(pair.name, pair.aperture), f"the real pair {pair.input}") for pair in list_real_pairs(real)]
            planned += [(out / "real_pairs.json", "the real-pair scores")]
    planned += [(out / "tflite" / "report.json", "the export's report")] if tflite else []
    checkpoints = out / "pretrain" / "checkpoints"
    return planned + [(path, "an earlier demo's checkpoint") for path in (sorted(checkpoints.iterdir()) if checkpoints.is_dir() else [])]


def parse(argv: list[str]) -> tuple[dict, list[str]]:
    """``(options, training overrides)``: :func:`options` checked (:mod:`bokeh.options`), dotted
    keys passed to the training config.

    Raises:
        bokeh.options.OptionError: an unknown argument or a bad value (one sentence naming it).
    """
    from bokeh.options import parse as parse_options

    return parse_options(argv, options(), USAGE, passthrough=lambda arg: "." in arg.partition("=")[0])


def demo_config(out: Path, minutes: float, extra: list[str], overwrite: bool = False):
    """The composed ``experiment=demo`` config, its training capped at ``minutes``; with
    ``overwrite`` its run folder may hold an earlier demo's run (:func:`bokeh.train.check_run_folder`)."""
    days, seconds = divmod(int(round(minutes * 60)), 86400)
    budget = f"{days:02d}:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"  # DD:HH:MM:SS
    check_given_once(extra)
    overrides = ["experiment=demo", f"output_dir={hydra_quote(str(out / 'pretrain'))}", f"trainer.max_time={budget}",
                 f"overwrite={str(overwrite).lower()}", *quote_path_overrides(extra, PATH_KEYS)]
    return compose_checked(CONF_DIR, "train", overrides)  # Hydra's refusals (an unknown key, ...): one sentence


def train_demo(cfg, out: Path) -> Path:
    """Pretrain the demo model; returns its best checkpoint (or the last, or one saved at the end)."""
    trainer = run(cfg)
    callback = trainer.checkpoint_callback
    if callback is not None and (callback.best_model_path or callback.last_model_path):
        return Path(callback.best_model_path or callback.last_model_path)
    # the time budget ran out before any checkpoint was written: keep what was trained
    fallback = out / "pretrain" / "checkpoints" / "end.ckpt"
    trainer.save_checkpoint(fallback)
    return fallback


def render_photos(generator, photos: list[str], out: Path, prefix: str, short_side: int) -> list[Path]:
    """``input | output`` of scikit-image photos through ``generator``, as PNGs ``<prefix>_<photo>.png``,
    each run with its short side at ``short_side`` pixels (the scale the model was trained at)."""
    import numpy as np
    import skimage.data

    from bokeh.images import from_tensor, write_image
    from bokeh.render import TorchBackend, render_photo

    backend = TorchBackend(generator)
    written = []
    for photo in photos:
        image = getattr(skimage.data, photo)()
        image = np.ascontiguousarray(np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3])  # (H, W, 3)
        output = from_tensor(render_photo(image, backend, short_side=short_side).image)
        written.append(write_image(out / f"{prefix}_{photo}.png", np.concatenate([image, output], axis=1)))
    return written


#: The controls demo: scikit-image's astronaut tapped on her face and on the shuttle model behind her
CONTROLS_PHOTO = "astronaut"
CONTROL_TAPS = {"face": (0.44, 0.25), "shuttle": (0.79, 0.35)}  # (x, y) fractions of the width and height
CONTROL_APERTURES = (1.8, 4.0, 11.0)


def render_controls(generator, out: Path, short_side: int) -> Path | None:
    """Tap to focus and an aperture on :data:`CONTROLS_PHOTO`, as one PNG
    ``reference_controls_<photo>.png``: row 1 the photo, then tapped on the face at f/1.8, f/4 and
    f/11; row 2 the model's own guess (no tap, f/1.8), then tapped on the shuttle at the same
    apertures. None for a model without both controls (nothing to show)."""
    import numpy as np
    import skimage.data

    from bokeh.evaluate.real import backend_render
    from bokeh.images import write_image
    from bokeh.render import TorchBackend

    backend = TorchBackend(generator)
    if backend.contract.controls != ("focus", "aperture"):
        return None
    render = backend_render(backend, short_side=short_side)
    image = np.ascontiguousarray(getattr(skimage.data, CONTROLS_PHOTO)()[..., :3])
    rows = []
    for first, tap in ((image, CONTROL_TAPS["face"]), (render(image, None, None), CONTROL_TAPS["shuttle"])):
        rendered = [render(image, tap, f) for f in CONTROL_APERTURES]
        rows.append(np.concatenate([first, *rendered], axis=1))
    return write_image(out / f"reference_controls_{CONTROLS_PHOTO}.png", np.concatenate(rows, axis=0))


#: The subject picture: a portrait that ships with an installed package (matplotlib's sample data) and a
#: photo without a person (scikit-image's coffee cup)
SUBJECT_PHOTOS = ("grace_hopper", "coffee")


def subject_photo(name: str):
    """``(H, W, 3)`` uint8: matplotlib's ``grace_hopper.jpg`` (its sample data) or a scikit-image photo."""
    import numpy as np
    import skimage.data

    if name == "grace_hopper":
        from matplotlib.cbook import get_sample_data

        from bokeh.images import read_rgb

        return read_rgb(get_sample_data("grace_hopper.jpg", asfileobj=False))
    return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])


def subject_rows(backend, short_side: int | str | None = "auto", photos=SUBJECT_PHOTOS):
    """One row per photo of :data:`SUBJECT_PHOTOS`: ``input | matte | render`` with ``subject=auto``
    (the subject matte and the model's decide), then ``matte | render`` with ``subject=off`` (the
    model alone; a black matte where the model has none). Shape: a list of ``(H, 5W, 3)`` uint8."""
    import numpy as np

    from bokeh.images import from_tensor
    from bokeh.render import render_photo
    from bokeh.render.fit import matte_to_uint8

    rows = []
    for name in photos:
        image = subject_photo(name)
        tiles = [image]
        for subject in ("auto", "off"):
            rendered = render_photo(image, backend, subject=subject, short_side=short_side)
            gray = matte_to_uint8(rendered.matte) if rendered.matte is not None else np.zeros(image.shape[:2], np.uint8)
            tiles += [np.repeat(gray[..., None], 3, axis=2), from_tensor(rendered.image)]
        rows.append(np.concatenate(tiles, axis=1))
    return rows


def render_subject(generator, out: Path, prefix: str, short_side: int) -> Path:
    """The subject picture ``<prefix>_subject.png`` (:func:`subject_rows`, rows scaled to one width)."""
    import numpy as np
    from PIL import Image

    from bokeh.images import write_image
    from bokeh.render import TorchBackend

    rows = subject_rows(TorchBackend(generator), short_side)
    width = min(row.shape[1] for row in rows)
    rows = [row if row.shape[1] == width else np.asarray(Image.fromarray(row).resize(
        (width, round(row.shape[0] * width / row.shape[1])), Image.LANCZOS)) for row in rows]
    return write_image(out / f"{prefix}_subject.png", np.concatenate(rows, axis=0))


def render_real_pairs(generator, folder: Path, out: Path, short_side: int) -> tuple[list[Path], dict]:
    """Real photo pairs with their targets: ``input | output | target`` PNGs ``reference_real_<name>.png``
    (at most 1024 px wide each), rendered as ``bokeh.render`` renders by default (tapped at the
    subject mask's interior point and at the target's f-number where the model takes those), and
    the real-pair benchmark's table (:mod:`bokeh.evaluate.real`) for them."""
    import numpy as np
    from PIL import Image

    from bokeh.data.focus import interior_point
    from bokeh.data.real_pairs import list_real_pairs, read_mask
    from bokeh.evaluate.real import backend_render, evaluate_real
    from bokeh.images import read_rgb, write_image
    from bokeh.render import TorchBackend

    backend = TorchBackend(generator)
    contract = backend.contract
    pairs = list_real_pairs(folder)
    render = backend_render(backend, short_side=short_side)

    written = []
    for pair in pairs:
        image, target = read_rgb(pair.input), read_rgb(pair.target)
        focus = interior_point(read_mask(pair.mask)) if contract.focus and pair.mask is not None else None
        output = render(image, focus, pair.aperture if contract.aperture else None)
        strip = np.concatenate([image, output, target], axis=1)
        scale = min(1.0, 3072 / strip.shape[1])
        if scale < 1.0:
            strip = np.asarray(Image.fromarray(strip).resize((round(strip.shape[1] * scale), round(strip.shape[0] * scale)), Image.LANCZOS))
        written.append(write_image(out / real_strip_name(pair.name, pair.aperture), strip))
    results = evaluate_real(pairs, render, tap=contract.focus, aperture=contract.aperture)
    return written, results


def main(argv: list[str] | None = None) -> None:
    from hydra.errors import HydraException

    from bokeh.options import help_text, wants_help

    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(__doc__.strip() + "\n\n" + help_text(USAGE, options()))
        raise SystemExit(0)
    try:  # every option before any work
        checked, overrides = parse(argv)
        checked = check_options(checked)
        out = checked["out"]
        cfg = demo_config(out, checked["minutes"], overrides, checked["overwrite"])
        check_data_paths(cfg.data)
        check_config_values(cfg)  # the training settings as bokeh.train checks them, before the reference step's minutes
        import hydra

        built("data", lambda: hydra.utils.instantiate(cfg.data))
        built("model", lambda: build_module(cfg))
        # every file the demo writes, known now: none twice, none too long, none replaced without overwrite=true
        check_planned(planned_outputs(out, checked["photos"], checked["reference"], checked["tflite"], checked["real"]), "out",
                      overwrite=checked["overwrite"], remedy="give the real pairs distinct names")
        check_run_folder(cfg, "out")
        check_output_folder(out, "out")
    except (ValueError, OutputFolderError, DataLayoutError, HydraException) as error:
        print(f"bokeh.demo: {str(error).splitlines()[0]}", file=sys.stderr)
        raise SystemExit(EXIT_SETTINGS) from None
    finished: list[str] = []  # what is done, for the line printed on Ctrl-C
    with interruptible("bokeh.demo", lambda: "finished: " + (", ".join(finished) or "nothing yet")):
        try:
            _steps(checked, cfg, out, finished)
        except CheckpointWriteError as error:
            print(f"bokeh.demo: stopped: {error}", file=sys.stderr)
            raise SystemExit(1) from None


def _steps(options: dict, cfg, out: Path, finished: list[str]) -> None:
    """Reference model, training, scores, photos, export; each finished step is appended to ``finished``."""
    photos = options["photos"]
    started = time.perf_counter()

    import hydra

    samples = validation_samples(hydra.utils.instantiate(cfg.data))  # writes the pair set once
    results = baselines(samples)
    pictures = []
    if options["reference"]:
        from bokeh import pretrained

        shipped = pretrained.weights("reference")
        reference = shipped.load()
        shown = time.perf_counter()
        short_side = shipped.input.short_side
        pictures += render_photos(reference, photos, out, "reference", short_side)
        controls = render_controls(reference, out, short_side)
        pictures += [controls] if controls else []
        pictures.append(render_subject(reference, out, "reference", short_side))
        if options["real"] is not None:
            from bokeh.evaluate.real import format_real_table

            real_pictures, real_results = render_real_pairs(reference, options["real"], out, short_side)
            pictures += real_pictures
            write_text_atomic(out / "real_pairs.json", json_text(real_results, indent=2))
            print(f"\nthe shipped reference model on {len(real_pictures)} real pair(s) from {options['real']}:\n" + format_real_table(real_results))
        results = {"reference model": evaluate_generator(reference, samples, with_baselines=False)["model"]} | results
        finished.append("reference model (" + ", ".join(str(p) for p in pictures) + ")")
        print(f"\nthe shipped reference model, {time.perf_counter() - shown:.0f} s for {len(photos)} photo(s) and "
              f"{len(samples)} validation pairs:\n" + format_table(results) + "\n")

    trained = time.perf_counter()
    checkpoint = train_demo(cfg, out)
    train_seconds = time.perf_counter() - trained
    finished.append(f"training ({checkpoint})")
    demo = evaluate_generator(load_generator(checkpoint), samples, with_baselines=False)["model"]
    demo |= {"checkpoint": str(checkpoint), "train_seconds": round(train_seconds, 1)}
    results = {"demo model": demo} | results
    write_text_atomic(out / "metrics.json", json_text(results))
    finished.append(f"scores ({out / 'metrics.json'})")
    pictures += render_photos(load_generator(checkpoint), photos, out, "demo", min(cfg.data.size))
    pictures.append(render_subject(load_generator(checkpoint), out, "demo", min(cfg.data.size)))
    finished.append("demo model photos")

    exported = None
    if options["tflite"]:
        # its own process: TensorFlow and the conversion's memory stay out of this one; on Ctrl-C it
        # is waited for, so it removes its temporary folder (bokeh.cli.run_child)
        run_child([sys.executable, "-m", "bokeh.export", f"ckpt={checkpoint}", f"out={out / 'tflite'}", "size=256x384", "overwrite=true"])
        exported = out / "tflite"

    print("\n" + format_table(results))
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s (training {train_seconds:.0f} s)")
    print(f"  checkpoint : {checkpoint}")
    print(f"  metrics    : {out / 'metrics.json'}")
    for picture in pictures:
        print(f"  photo      : {picture}")
    if exported:
        print(f"  tflite     : {exported}")


if __name__ == "__main__":
    main()
