"""``python -m bokeh.evaluate``: one command, three benchmarks, dispatched on the options given.

    python -m bokeh.evaluate ckpt=outputs/.../best.ckpt                 # synthetic validation set
    python -m bokeh.evaluate ckpt=reference                             # the shipped reference model
    python -m bokeh.evaluate ckpt=... data=ebb data.root=/data/ebb      # EBB! Val294
    python -m bokeh.evaluate ckpt=reference real=path/to/real_pairs     # real photo pairs (bokeh.evaluate.real)
    python -m bokeh.evaluate ckpt=reference portraits=path/to/portraits # portraits (bokeh.evaluate.portraits)

The synthetic mode composes the training config (Hydra: any data override); ``real=`` and
``portraits=`` take ``key=value`` options (:mod:`bokeh.options`). Every mode checks its options, the
model file, the data and ``out=`` before any scoring (one sentence, exit status 2) and writes no
partial report on Ctrl-C (exit status 130).
"""

from __future__ import annotations

import sys

from bokeh.evaluate import synthetic
from bokeh.evaluate.synthetic import evaluate_generator, format_table, validation_samples


def main(argv: list[str] | None = None) -> dict:
    """CLI: ``ckpt=PATH`` (or a shipped model's name) plus any data overrides of the training config.

    Paths may hold ``=``, spaces or quotes (``ckpt=``, ``out=`` and the training config's path
    settings, Hydra-quoted here). An unwritable ``out=`` or a bad checkpoint stops before any
    scoring (exit status 2); Ctrl-C stops with one line (130) and writes no partial report.
    """
    import hydra

    from bokeh import pretrained
    from bokeh.checkpoint import CheckpointError, load_generator
    from bokeh.cli import EXIT_SETTINGS, check_given_once, compose_checked, given_path, interruptible, json_text, quote_path_overrides, unquote
    from bokeh.files import OutputFolderError, check_output_file, write_text_atomic
    from hydra.errors import HydraException

    from bokeh.data.pairs import BadPairError, DataLayoutError
    from bokeh.train import CONF_DIR, PATH_KEYS, built, check_data_paths

    from bokeh.options import help_text, wants_help

    args = list(sys.argv[1:] if argv is None else argv)
    if wants_help(args):
        print(synthetic.__doc__.strip() + "\n\n" + __doc__.strip() + "\n\n" + SYNTHETIC_USAGE + "\n\n" + help_text(REAL_USAGE, real_options())
              + "\n\n" + help_text(PORTRAIT_USAGE, portrait_options()))
        raise SystemExit(0)
    if any(a.startswith("real=") for a in args):
        return main_real(args)
    if any(a.startswith("portraits=") for a in args):
        return main_portraits(args)
    from bokeh.options import REQUIRED, Option, OptionError, boolean, model, parse, path

    try:  # ckpt=, out= and overwrite= are this command's; every other key=value goes to the training config (Hydra)
        own, passed = parse([f"{k}={unquote(v)}" if k in ("ckpt", "out") else a for a in args for k, _, v in [a.partition("=")]],
                            (Option("ckpt", model, REQUIRED, "the model"), Option("out", path, None, "write the scores as JSON"),
                             Option("overwrite", boolean, False, "replace an existing out= file")),
                            SYNTHETIC_USAGE, passthrough=lambda arg: True)
    except OptionError as error:
        print(f"bokeh.evaluate: {error}", file=sys.stderr)
        raise SystemExit(EXIT_SETTINGS) from None
    ckpt, out = [own["ckpt"]], ([own["out"]] if own["out"] is not None else [])
    overrides = quote_path_overrides(passed, PATH_KEYS)
    with interruptible("bokeh.evaluate", lambda: "nothing was written"):
        try:  # every setting before any work: the model file, the data folder (it needs no training pairs), out=, the model
            report = check_output_file(given_path("out", out[0]), "out", own["overwrite"]) if out else None
            pretrained.resolve(ckpt[0], suffixes=None)
            check_given_once(passed)
            cfg = compose_checked(CONF_DIR, "train", overrides + ["output_dir=."])  # Hydra's refusals: one sentence
            if "on_the_fly" in cfg.data and not cfg.data.get("photo_pairs") and not any(a.startswith(("data.on_the_fly=", "data.cache_dir=")) for a in overrides):
                cfg.data.on_the_fly = True  # the validation pairs rendered in memory: nothing is written but out=
            check_data_paths(cfg.data)
            generator = load_generator(ckpt[0])
            samples = validation_samples(built("data", lambda: hydra.utils.instantiate(cfg.data)))  # a constructor's reason kept
        except (OutputFolderError, CheckpointError, DataLayoutError, BadPairError, HydraException, ValueError) as error:
            print(f"bokeh.evaluate: {str(error).splitlines()[0] if isinstance(error, HydraException) else error}", file=sys.stderr)
            raise SystemExit(EXIT_SETTINGS) from None
        results = evaluate_generator(generator, samples)
        print(format_table(results))
        if report is not None:
            write_text_atomic(report, json_text(results))
    return results


SYNTHETIC_USAGE = ("usage: python -m bokeh.evaluate ckpt=PATH [out=report.json] [data=ebb data.root=...] | ckpt=PATH real=FOLDER "
                   "[out=metrics.json] | ckpt=PATH portraits=FOLDER [out=metrics.json]")


def refuse(message: str) -> SystemExit:
    """Print ``bokeh.evaluate: <message>`` to stderr; the ``SystemExit`` (bad settings, 2) to raise."""
    from bokeh.cli import EXIT_SETTINGS

    print(f"bokeh.evaluate: {message}", file=sys.stderr)
    return SystemExit(EXIT_SETTINGS)


def cli_settings(args: list[str], options, mode: str, usage: str) -> dict:
    """The checked ``key=value`` settings of the ``real=`` / ``portraits=`` benchmarks
    (:mod:`bokeh.options`); anything else, a bad value or no ``ckpt=`` is refused (exit 2) in one
    sentence naming the option as typed."""
    from bokeh.cli import unquote
    from bokeh.options import OptionError, parse

    try:
        settings, _ = parse([f"{k}={unquote(v)}" if sep else arg for arg in args for k, sep, v in [arg.partition("=")]],
                            options, usage)
    except OptionError as error:
        hint = (f" with {mode}= (the data overrides are for the synthetic and EBB! sets)"
                if str(error).startswith("unknown argument") else "")
        raise refuse(f"{error}{hint}") from None
    return settings


def subject_option():
    """``subject=`` of the ``real=`` / ``portraits=`` benchmarks (as ``bokeh.render``'s): ``auto``, ``person`` or ``off``."""
    from bokeh.options import Option, choice
    from bokeh.render.fit import SUBJECT_HELP, SUBJECT_MODES

    return Option("subject", choice(*SUBJECT_MODES), "auto", SUBJECT_HELP)


def benchmark_options(mode: str, folder: str, rows: str):
    """What the ``real=`` and ``portraits=`` benchmarks both take: the model, their folder (``mode=``),
    ``out=`` (``rows`` as JSON) and ``overwrite=``."""
    from bokeh.options import REQUIRED, Option, boolean, model, path

    return (
        Option("ckpt", model, REQUIRED, "the model"),
        Option(mode, path, REQUIRED, folder),
        Option("out", path, None, f"write {rows} as JSON"),
        Option("overwrite", boolean, False, "replace an existing out= file"),
    )


REAL_USAGE = ("usage: python -m bokeh.evaluate ckpt=<model> real=<folder of real pairs> [out=metrics.json] "
              "[bokeh_aperture=1.8] [apertures=1.8,2.8] [split=auto|detail] [tap=auto|true|false] [aperture=auto|true|false] "
              "[subject=auto|person|off]")


def real_options():
    """The options of ``bokeh.evaluate real=``, each declared once (:mod:`bokeh.options`)."""
    from bokeh.data.real_pairs import EBB_APERTURE
    from bokeh.evaluate.real import SPLITS
    from bokeh.options import Option, auto_or_bool, choice, number, numbers

    return (
        *benchmark_options("real", "a folder of real pairs (original/ and bokeh/ or f<N>/)", "the per-pair rows and means"),
        Option("bokeh_aperture", number(0, low_open=True, what="an f-number"), EBB_APERTURE, "the f-number of the bokeh/ targets"),
        Option("apertures", numbers(number(0, low_open=True, what="an f-number"), "target f-numbers separated by commas"), None,
               "score only these f<N>/ folders"),
        Option("split", choice(*SPLITS), "auto", "detail: ignore the subject masks"),
        Option("tap", auto_or_bool, None, "tap each pair at its subject mask (auto: when the model takes a focus point)"),
        Option("aperture", auto_or_bool, None, "render each target's f-number (auto: when the model takes one)"),
        subject_option(),
    )


def main_real(args: list[str]) -> dict:
    """CLI with ``real=FOLDER``: the real-pair benchmark (:mod:`bokeh.evaluate.real`).

    Each pair's input is rendered exactly as ``python -m bokeh.render ckpt=...`` renders a photo by
    default (``short_side=auto``, detail restore, ``precision=auto``), then scored next to identity
    and the best global blur at the photo's size; one table per target f-number is printed and,
    with ``out=``, the per-pair rows and means are written as JSON. Options: ``bokeh_aperture=``
    (f-number of ``bokeh/`` targets, default 1.8), ``split=detail`` (ignore the subject masks),
    ``tap=true`` (tap each pair at its subject mask's interior point; pairs without a mask stay auto),
    ``aperture=true`` (render each target's f-number); ``auto`` (the default for both): on when the
    model takes that control; ``subject=auto|person|off`` (the focus decision, as ``bokeh.render``'s). Bad arguments, a bad model,
    a folder not in the layout or a missing subject segmenter: one line, exit status 2, before any rendering.
    """
    from bokeh.checkpoint import CheckpointError
    from bokeh.cli import EXIT_SETTINGS, interruptible, json_text
    from bokeh.files import OutputFolderError, check_output_file, write_text_atomic
    from bokeh.data.pairs import DataLayoutError
    from bokeh import pretrained
    from bokeh.data.real_pairs import EBB_APERTURE, list_real_pairs
    from bokeh.evaluate.real import SPLITS, evaluate_real, format_real_table
    from bokeh.evaluate.real import backend_render
    from bokeh.render import load_backend
    from bokeh.render.fit import subject_segmenter
    from bokeh.runtimes import NotFullyAccelerated, RuntimeUnavailable

    settings = cli_settings(args, real_options(), "real", REAL_USAGE)
    split, bokeh_aperture, apertures = settings["split"], settings["bokeh_aperture"], settings["apertures"]
    wanted = {key: settings[key] for key in ("tap", "aperture")}
    with interruptible("bokeh.evaluate", lambda: "nothing was written"):
        try:
            report = check_output_file(settings["out"], "out", settings["overwrite"]) if settings["out"] is not None else None
            pretrained.resolve(settings["ckpt"])  # the model file before the data: one check of what a model file is
            pairs = list_real_pairs(settings["real"], bokeh_aperture, apertures)
            backend = load_backend(settings["ckpt"], precision="auto")
            if settings["subject"] != "off":
                subject_segmenter(backend)  # missing: one sentence now, before any rendering
        except (OutputFolderError, CheckpointError, DataLayoutError, FileNotFoundError, ValueError,
                RuntimeUnavailable, NotFullyAccelerated) as error:
            raise refuse(str(error)) from None

        contract = backend.contract
        taken = {"tap": contract.focus, "aperture": contract.aperture}
        for key, value in wanted.items():
            if value and not taken[key]:
                raise refuse(f"{key}=true, but {settings['ckpt']} takes no {'tap-to-focus point' if key == 'tap' else 'f-number'} "
                             f"(its inputs: {', '.join(contract.names)}): leave {key} out")
        use = {key: taken[key] if value is None else value for key, value in wanted.items()}

        render = backend_render(backend, subject=settings["subject"])  # as bokeh.render renders, with the controls chosen above
        controls = ", ".join(f"{k}={'on' if v else 'off'}" for k, v in use.items()) + f", subject={settings['subject']}"
        print(f"{backend.name}: {len(pairs)} real pair(s) from {settings['real']}, rendered as bokeh.render renders "
              f"them (its default size and detail restore) with {controls} (tap: each subject mask's interior point; "
              f"aperture: each target's f-number)", file=sys.stderr)
        try:
            results = evaluate_real(pairs, render, split=split, tap=use["tap"], aperture=use["aperture"],
                                    progress=lambda row: print(f"  {row['name']}: model {row['model']['psnr']:.2f} dB",
                                                               file=sys.stderr))
        except ValueError as error:  # no pair could be scored (each said as it was skipped)
            raise refuse(str(error)) from None
        print(format_real_table(results))
        if report is not None:
            write_text_atomic(report, json_text({"model": settings["ckpt"], "split": split, **use, "subject": settings["subject"], **results}, indent=2))
    return results


PORTRAIT_USAGE = ("usage: python -m bokeh.evaluate ckpt=<model> portraits=<folder with images/ and masks/> [out=metrics.json] "
                  "[aperture=1.8] [tap=auto|true|false] [subject=auto|person|off]")


def portrait_options():
    """The options of ``bokeh.evaluate portraits=``, each declared once (:mod:`bokeh.options`)."""
    from bokeh.models.controls import parse_aperture
    from bokeh.options import Option, auto_or_bool

    return (
        *benchmark_options("portraits", "a folder with images/ and masks/", "the per-photo rows and the summary"),
        Option("aperture", parse_aperture, None, "the f-number to render (default 1.8; models with an aperture input)"),
        Option("tap", auto_or_bool, None, "also tap each photo inside its mask (auto: when the model takes a focus point)"),
        subject_option(),
    )


def main_portraits(args: list[str]) -> dict:
    """CLI with ``portraits=FOLDER``: the portrait benchmark (:mod:`bokeh.evaluate.portraits`).

    Each photo is rendered at its full size exactly as ``python -m bokeh.render ckpt=...`` renders it
    by default, at ``aperture=`` (f-number, default 1.8; for a model with an aperture input), on the
    model's own guess and, with ``tap=`` (``auto``, the default: when the model takes a focus point),
    tapped at the point deepest inside the mask; ``subject=auto|person|off``: the focus decision, as ``bokeh.render``'s. The table (mean and median of matte IoU and detail
    kept, auto and tapped) is printed and, with ``out=``, the per-photo rows and the summary are
    written as JSON (replacing the file, as ``real=`` does). Bad arguments, a bad model, a folder not in
    the layout or a mask whose size differs from its photo's: one line, exit status 2, before any rendering.
    """
    from bokeh.checkpoint import CheckpointError
    from bokeh.cli import interruptible, json_text
    from bokeh.files import OutputFolderError, check_output_file, write_text_atomic
    from bokeh.data.pairs import DataLayoutError
    from bokeh import pretrained
    from bokeh.data.portraits import check_portraits, list_portraits
    from bokeh.evaluate.portraits import PORTRAIT_APERTURE, backend_render, evaluate_portraits, format_portrait_table
    from bokeh.images import ImageError
    from bokeh.render import load_backend
    from bokeh.render.fit import subject_segmenter
    from bokeh.runtimes import NotFullyAccelerated, RuntimeUnavailable

    settings = cli_settings(args, portrait_options(), "portraits", PORTRAIT_USAGE)
    aperture, tap = settings["aperture"], settings["tap"]
    with interruptible("bokeh.evaluate", lambda: "nothing was written"):
        try:
            report = check_output_file(settings["out"], "out", settings["overwrite"]) if settings["out"] is not None else None
            pretrained.resolve(settings["ckpt"])  # the model file before the data: one check of what a model file is
            left_out: list[str] = []  # said once the run is accepted: a refusal stays one sentence
            portraits = check_portraits(list_portraits(settings["portraits"]),
                                        skipped=lambda portrait, reason: left_out.append(f"  {portrait.name}: skipped: {reason}"))
            backend = load_backend(settings["ckpt"], precision="auto")
            if settings["subject"] != "off":
                subject_segmenter(backend)  # missing: one sentence now, before any rendering
        except (OutputFolderError, CheckpointError, DataLayoutError, ImageError, FileNotFoundError, ValueError,
                RuntimeUnavailable, NotFullyAccelerated) as error:
            raise refuse(str(error)) from None
        contract = backend.contract
        if tap and not contract.focus:
            raise refuse(f"tap=true, but {settings['ckpt']} takes no tap-to-focus point (its inputs: {', '.join(contract.names)}): leave tap out")
        if aperture is not None and not contract.aperture:
            raise refuse(f"aperture={aperture:g}, but {settings['ckpt']} takes no f-number (its inputs: "
                         f"{', '.join(contract.names)}): leave aperture out")
        tapped = contract.focus if tap is None else tap
        aperture = (PORTRAIT_APERTURE if aperture is None else aperture) if contract.aperture else None
        for line in left_out:
            print(line, file=sys.stderr)
        render, has_matte = backend_render(backend, subject=settings["subject"])
        f_number = f"f/{aperture:g}" if aperture is not None else "its own lens (no aperture input)"
        print(f"{backend.name}: {len(portraits)} portrait(s) from {settings['portraits']}, rendered at full size as bokeh.render "
              f"renders them, at {f_number}, {'auto and tapped' if tapped else 'auto only'}"
              + f", subject={settings['subject']}" + ("" if has_matte else "; this model has no matte output: matte IoU is left out"), file=sys.stderr)

        def progress(row: dict) -> None:
            shown = ", ".join(f"{run} {row[run]['detail_subject']:.2f} / {row[run]['detail_background']:.2f}"
                              for run in ("auto", "tapped") if run in row)
            print(f"  {row['name']}: detail kept person / background {shown}", file=sys.stderr)

        try:
            results = evaluate_portraits(portraits, render, tapped=tapped, aperture=aperture, progress=progress)
        except (ImageError, ValueError) as error:  # a file that broke after the header check
            raise refuse(str(error)) from None
        print(format_portrait_table(results, has_matte))
        if report is not None:
            write_text_atomic(report, json_text({"model": settings["ckpt"], "portraits": str(settings["portraits"]),
                                                  "aperture": aperture, "tapped": tapped, "matte": has_matte,
                                                  "subject": settings["subject"], **results}, indent=2))
    return results


if __name__ == "__main__":
    main()
