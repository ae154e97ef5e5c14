"""What the command lines share (bokeh.cli), checked through every entry point: awkward paths,
unwritable output folders, Ctrl-C. Subprocesses run the real CLIs (and make), as users do.

The render and train variants live beside their other CLI tests (test_render.py, test_train_cli.py),
the synthetic-set writer's in tests/data/test_synthesize.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from bokeh.cli import OutputFolderError, check_output_folder, hydra_quote, quote_path_overrides, run_child
from PIL import Image
from test_render import gradient_photo
from user_cli import ENV, cli, one_line

REPO = Path(__file__).resolve().parents[1]
# names a file system allows and Hydra's override grammar does not: '=', spaces, quotes, commas, brackets
AWKWARD = "runs/epoch=3-step=9/my model's \"best\" [v1], final"
UNWRITABLE = Path("/proc/bokeh-test-output")  # cannot be created, even by root (tests may run as root)


def env() -> dict[str, str]:
    """This interpreter's environment, with this checkout's src/ first (a worktree or a clone)."""
    return {**ENV, "PYTHONUNBUFFERED": "1"}


def make(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``make`` in this checkout with the running interpreter's venv (STAMP= skips the venv step)."""
    return subprocess.run(["make", "-s", "-C", str(REPO), "STAMP=", f"BIN={Path(sys.executable).parent}", *args],
                          cwd=cwd, env=env(), capture_output=True, text=True, timeout=900)


def interrupt_when(process: subprocess.Popen, ready, timeout: float = 600) -> tuple[int, str]:
    """Send SIGINT (Ctrl-C) to ``process`` once ``ready()`` is true; its exit status and stderr."""
    start = time.monotonic()
    while not ready():
        assert process.poll() is None, f"finished before it could be interrupted: {process.communicate()[1][-2000:]}"
        assert time.monotonic() - start < timeout, "never got ready"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    return process.returncode, err


# ----------------------------------------------------------------------------- Hydra quoting
@pytest.mark.parametrize("path", [
    AWKWARD, "C:\\models\\", "a\\'b", "${oc.env:HOME}/x", "x\\${y}", "10", "true", "null", "~/x", " lead and trail ",
])
def test_a_quoted_path_composes_back_to_itself(path):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(REPO / "conf" / "export"), version_base="1.3"):
            assert compose("tflite", overrides=[f"ckpt={hydra_quote(path)}"]).ckpt == path
            if "${" not in path:  # interpolations are the user's to write: quote_path_overrides leaves them
                expected = None if path == "null" else path  # ckpt=null stays null
                assert compose("tflite", overrides=quote_path_overrides([f"ckpt={path}"], ["ckpt"])).ckpt == expected
    finally:
        GlobalHydra.instance().clear()


def test_only_path_settings_that_need_it_are_quoted_and_quoting_twice_changes_nothing():
    given = [f"ckpt_path={AWKWARD}", "data.root=/data/ebb", "init_from=null", "data.root=${oc.env:EBB}",
             "trainer.max_steps=10", "data.include_list='already=quoted'", f"+data.cache_dir={AWKWARD}"]
    once = quote_path_overrides(given, ["ckpt_path", "init_from", "data.root", "data.include_list", "data.cache_dir"])
    assert once[0] == f"ckpt_path={hydra_quote(AWKWARD)}" and once[-1] == f"+data.cache_dir={hydra_quote(AWKWARD)}"
    assert once[1:6] == given[1:6]  # plain paths, null, interpolations, other settings, quoted by hand: untouched
    assert quote_path_overrides(once, ["ckpt_path", "data.cache_dir"]) == once


# ----------------------------------------------------------------------------- output folders
def test_check_output_folder_names_the_setting_and_leaves_nothing_behind(tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OutputFolderError, match=r"out=.*a-file is a file"):
        check_output_folder(tmp_path / "a-file", "out")
    with pytest.raises(OutputFolderError, match=r"not writable .*choose another with out="):
        check_output_folder(UNWRITABLE / "deeper", "out")
    assert check_output_folder(tmp_path / "new" / "deeper", "out", keep=False) == tmp_path / "new" / "deeper"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"], "folders made for the probe are removed"
    check_output_folder(tmp_path / "kept", "out")
    assert list((tmp_path / "kept").iterdir()) == [], "no probe file left"


def test_an_unwritable_out_is_refused_before_any_work_by_every_entry_point(tmp_path, capsys, monkeypatch):
    from bokeh import demo
    from bokeh.evaluate import __main__ as evaluate
    from bokeh.data import synthesize

    monkeypatch.chdir(tmp_path)
    # bokeh.data.synthesize
    assert synthesize.main([f"out={UNWRITABLE}", "n=1", "size=16x16"]) == 2
    assert "not writable" in capsys.readouterr().err
    # bokeh.evaluate: out= is a file to write; refused before the checkpoint is even read
    with pytest.raises(SystemExit) as exit_:
        evaluate.main(["ckpt=missing.ckpt", f"out={UNWRITABLE / 'report.json'}"])
    assert exit_.value.code == 2 and "out=" in capsys.readouterr().err
    # bokeh.demo: before the synthetic set or any training
    monkeypatch.setattr(demo, "train_demo", lambda *a, **k: pytest.fail("trained despite an unwritable out="))
    with pytest.raises(SystemExit) as exit_:
        demo.main([f"out={UNWRITABLE}"])
    assert exit_.value.code == 2 and "choose another with out=" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    # bokeh.export (a process of its own: TensorFlow), before the checkpoint is loaded
    result = subprocess.run([sys.executable, "-m", "bokeh.export", "ckpt=missing.ckpt", f"out={UNWRITABLE}"],
                            cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "not writable" in result.stderr and "choose another with out=" in result.stderr
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- awkward paths, make
def test_make_targets_take_any_path(tmp_path):
    out = tmp_path / AWKWARD / "set"
    done = make("data", f"OUT={out}", "N=2", "SIZE=16x24", "SEED=3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (out / "original").iterdir()) == ["0.jpg", "1.jpg"]
    assert json.loads((out / "meta.json").read_text())["seed"] == 3
    # the checkpoint path arrives whole (the file does not exist: the export stops at once, naming it)
    missing = tmp_path / AWKWARD / "last.ckpt"
    refused = make("tflite", f"CKPT={missing}", f"OUT={tmp_path / 'out dir'}", "SIZE=64x96", cwd=tmp_path)
    assert refused.returncode != 0 and f"{missing} does not exist" in refused.stderr
    assert "mismatched input" not in refused.stderr


@pytest.mark.export
@pytest.mark.slow
def test_make_tflite_exports_a_checkpoint_at_an_awkward_path(tmp_path):
    from test_render import write_tiny_checkpoint

    folder = tmp_path / AWKWARD
    folder.mkdir(parents=True)
    checkpoint = write_tiny_checkpoint(folder / "last.ckpt")
    out = tmp_path / "exports=1" / "my phone's model"
    # the paths are the subject here; the GPU check (fp16 arithmetic on a random tiny net) has its own tests
    done = make("tflite", f"CKPT={checkpoint}", f"OUT={out}", "SIZE=64x96", "EXPORT_ARGS=verify.gpu_accelerator=off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and report["settings"]["ckpt"] == str(checkpoint)
    assert (out / "bokeh_float32.tflite").stat().st_size > 0


# ----------------------------------------------------------------------------- Ctrl-C
@pytest.mark.export
@pytest.mark.slow
def test_ctrl_c_during_an_export_removes_its_temporary_folder(tmp_path):
    from test_render import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.ckpt")
    out = tmp_path / "out"
    out.mkdir()
    (out / "bokeh_float32.tflite").write_bytes(b"an earlier, good export")
    process = subprocess.Popen([sys.executable, "-m", "bokeh.export", f"ckpt={checkpoint}", f"out={out}", "size=64x96", "overwrite=true"],
                               cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # interrupt once the ONNX file is written (during its checks or the TFLite conversion)
    code, err = interrupt_when(process, lambda: any(out.glob(".export-*/bokeh.onnx")))
    assert code == 130, err[-3000:]
    assert "bokeh.export: interrupted (Ctrl-C)" in err and "temporary export folder was removed" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["bokeh_float32.tflite"], "no .export-* folder left"
    assert (out / "bokeh_float32.tflite").read_bytes() == b"an earlier, good export"


HALF_BUILT = """
import sys
from bokeh.cli import interruptible


class Plugin:  # as imageio's Pillow plugin: a finalizer that needs what __init__ had not set yet
    def __init__(self):
        raise KeyboardInterrupt  # Ctrl-C lands inside the constructor
        self.images = []

    def __del__(self):
        self.images.clear()


with interruptible("bokeh.x", lambda: "nothing was written"):
    Plugin()
"""


def test_ctrl_c_inside_a_library_constructor_prints_one_line_not_its_finalizers_traceback(tmp_path):
    """CI on main@f375822: Ctrl-C during an export's photo read left imageio's half-built plugin, whose
    ``__del__`` printed "Exception ignored ... Traceback" under the one line."""
    done = subprocess.run([sys.executable, "-c", HALF_BUILT], cwd=tmp_path, env=env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 130
    assert done.stderr.strip() == "bokeh.x: interrupted (Ctrl-C); nothing was written", done.stderr


def test_ctrl_c_during_evaluate_writes_no_report(tmp_path, monkeypatch, capsys):
    from bokeh.evaluate import __main__ as evaluate
    from test_render import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.ckpt")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "evaluate_generator", interrupted)
    with pytest.raises(SystemExit) as exit_:
        evaluate.main([f"ckpt={checkpoint}", f"out={tmp_path / 'report.json'}", "data.n=4", "data.val_count=1",
                       "data.size=[32,48]", "data.crop_size=[16,24]", "data.on_the_fly=true"])
    assert exit_.value.code == 130
    assert "bokeh.evaluate: interrupted (Ctrl-C); nothing was written" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.ckpt"]


def test_ctrl_c_while_the_demo_makes_its_synthetic_set_leaves_no_half_set(tmp_path, monkeypatch):
    from bokeh.data import synthesize

    real = synthesize._write_one
    calls = []

    def interrupted_at_the_third_pair(*args):
        calls.append(args[1])
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(*args)

    monkeypatch.setattr(synthesize, "_write_one", interrupted_at_the_third_pair)
    with pytest.raises(KeyboardInterrupt):
        synthesize.ensure_dataset(tmp_path / "cache" / "set", n=6, size=(16, 24), seed=0, noise=0.01, quality=95)
    assert list((tmp_path / "cache").iterdir()) == [], "the temporary set is removed"


def test_a_child_command_is_interrupted_and_waited_for(tmp_path):
    """What the demo does with its export process on Ctrl-C: the child cleans up, then the parent stops."""
    script = tmp_path / "child.py"
    script.write_text(
        "import pathlib, sys, time\n"
        "folder = pathlib.Path(sys.argv[1])\n"
        "try:\n"
        "    (folder / 'started').write_text('')  # inside: a Ctrl-C right after it still finds the cleanup\n"
        "    time.sleep(120)\n"
        "except KeyboardInterrupt:\n"
        "    time.sleep(1)  # slow cleanup: subprocess.run would have killed it after 0.25 s\n"
        "    (folder / 'cleaned up').write_text('')\n"
        "    raise SystemExit(130)\n"
    )

    def interrupt_once_started(signum, frame):  # Ctrl-C in this process, once the child runs
        if (tmp_path / "started").exists():
            raise KeyboardInterrupt
        signal.setitimer(signal.ITIMER_REAL, 0.1)

    previous = signal.signal(signal.SIGALRM, interrupt_once_started)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(KeyboardInterrupt):
            run_child([sys.executable, str(script), str(tmp_path)])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert (tmp_path / "cleaned up").exists()


def test_result_json_is_strict_and_small_files_get_the_usual_mode(tmp_path):
    import json as json_module

    import numpy as np

    from bokeh.cli import json_text, write_text_atomic

    text = json_text({"psnr_in_focus": float("nan"), "rows": [np.float32(1.5), float("inf"), 2, True]})
    assert json_module.loads(text, parse_constant=lambda name: pytest.fail(name)) == {"psnr_in_focus": None, "rows": [1.5, None, 2, True]}
    umask = os.umask(0)
    os.umask(umask)
    written = write_text_atomic(tmp_path / "meta.json", text)
    assert written.stat().st_mode & 0o777 == 0o666 & ~umask, "0o666 less the umask, as open() gives (mkstemp made 0o600)"


# ----------------------------------------------------------------------------- overwrite=true and an empty out= in every command (issues 21, 25)
def test_demo_and_export_refuse_to_replace_files_without_overwrite(tmp_path, capsys):
    from bokeh import demo
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bokeh.export.pipeline import ExportConfigError, settings_from

    def compose_export(*overrides):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf" / "export"), version_base="1.3"):
            return compose("tflite", overrides=list(overrides))

    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(SystemExit) as exited:
        demo.main([f"out={tmp_path}", "tflite=false", "reference=false"])
    assert exited.value.code == 2 and "overwrite=true" in capsys.readouterr().err
    assert (tmp_path / "metrics.json").read_text() == "{}"
    (tmp_path / "report.json").write_text("{}")
    with pytest.raises(ExportConfigError, match="overwrite=true"):
        settings_from(compose_export(f"ckpt={tmp_path / 'x.ckpt'}", f"out={tmp_path}"))
    assert settings_from(compose_export(f"ckpt={tmp_path / 'x.ckpt'}", f"out={tmp_path}", "overwrite=true")).out == tmp_path


@pytest.mark.parametrize("module, args", [
    ("bokeh.data.photo_pairs", ("src=nowhere", "overwrite=true")),
    ("bokeh.data.synthesize", ("n=1", "size=32x48", "overwrite=true")),
    ("bokeh.render", ("input=p.png", "ckpt=reference", "overwrite=true")),
    ("bokeh.evaluate", ("ckpt=reference", "real=nowhere")),
    ("bokeh.demo", ("overwrite=true",)),
    ("bokeh.export", ("ckpt=reference", "overwrite=true")),
])
def test_an_empty_out_is_refused_everywhere(module, args, tmp_path):
    Image.fromarray(gradient_photo(16, 16)).save(tmp_path / "p.png")
    before = sorted(p.name for p in tmp_path.iterdir())
    err = one_line(cli(module, *args, "out=", cwd=tmp_path, timeout=120))
    assert "out=" in err and ("empty" in err or "required" in err or "missing" in err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing was written into the current folder"


def test_ctrl_c_while_a_command_starts_is_one_line_not_a_traceback(tmp_path):
    """``python -m bokeh.<command>`` imports torch for seconds before its own Ctrl-C handling begins; an
    interrupt there was a KeyboardInterrupt traceback. As the command starts, ``sys.argv[0]`` is ``-m``."""
    starting = "import sys; sys.argv[0] = '-m'; import bokeh; sys.argv[0] = 'src/bokeh/render/__main__.py'; raise KeyboardInterrupt"
    done = subprocess.run([sys.executable, "-c", starting], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120)
    assert done.stderr == "bokeh.render: interrupted (Ctrl-C) while starting; nothing was done\n", done.stderr
    assert done.returncode != 0, "a failure still"
    as_library = subprocess.run([sys.executable, "-c", "import bokeh; raise KeyboardInterrupt"], cwd=tmp_path, env=env(),
                                capture_output=True, text=True, timeout=120)
    assert "Traceback" in as_library.stderr, "imported as a library (a notebook, a test), Python's own handling stays"


def test_a_key_given_twice_to_a_hydra_command_is_refused_not_the_last_taken():
    from bokeh.cli import check_given_once
    from bokeh.demo import demo_config
    from bokeh.evaluate import __main__ as evaluate

    with pytest.raises(ValueError, match=r"^trainer.max_steps= is given twice \(trainer.max_steps=1 and trainer.max_steps=2\): give it once$"):
        check_given_once(["trainer.max_steps=1", "data.n=4", "trainer.max_steps=2"])
    check_given_once(["trainer.max_steps=1", "~callbacks.last", "data.n=4"])
    with pytest.raises(ValueError, match=r"data.n= is given twice"):
        demo_config(Path("out"), 1.0, ["data.n=12", "data.n=10"])
    assert demo_config(Path("out"), 1.0, ["trainer.max_time=00:00:01:00"]).trainer.max_time == "00:00:01:00", "the demo's own default is not the user's"
    with pytest.raises(SystemExit) as exit_:
        evaluate.main(["ckpt=reference", "data.n=12", "data.n=10"])
    assert exit_.value.code == 2
    for program in ("bokeh.train", "bokeh.export"):
        refused = subprocess.run([sys.executable, "-m", program, "trainer.max_steps=1" if program == "bokeh.train" else "size=64x96",
                                  "trainer.max_steps=2" if program == "bokeh.train" else "size=64x97"],
                                 env=env(), capture_output=True, text=True, timeout=300)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "is given twice" in refused.stderr, refused.stderr
