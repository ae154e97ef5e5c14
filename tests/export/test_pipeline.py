"""bokeh.export.pipeline around its steps (replaced here by writing small files: the conversion takes
minutes): what a re-export leaves in out=, and a full disk while writing the report (issue 25)."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_model_files import doubling_model  # tests/ is on sys.path


def compose_export(*overrides: str):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[2] / "conf" / "export"), version_base="1.3"):
        return compose("tflite", overrides=list(overrides))


def quick_steps(names: tuple[str, ...]):
    """The export's steps replaced by writing ``names`` (the conversion takes minutes): the rest of
    the pipeline (temporary folder, report, moving files into out=) runs as it is."""
    def steps(report, s, generator, work, interrupts):
        for name in names:
            doubling_model(work / name)
    return steps


def test_a_re_export_without_int8_removes_the_earlier_int8_file(tiny_ckpt, tmp_path, monkeypatch):
    from bokeh.export import pipeline

    out = tmp_path / "tflite"
    out.mkdir()
    (out / "bokeh_int8.tflite").write_bytes(b"an earlier int8 export")
    monkeypatch.setattr(pipeline, "_steps", quick_steps(("bokeh.onnx", "bokeh_float32.tflite")))
    report = pipeline.run(compose_export(f"ckpt={tiny_ckpt}", f"out={out}", "overwrite=true")).to_json()
    assert report["passed"]
    assert sorted(p.name for p in out.iterdir()) == ["bokeh.onnx", "bokeh_float32.tflite", "report.json"]
    from bokeh.model_files import read_metadata

    for name in ("bokeh.onnx", "bokeh_float32.tflite"):  # each file says how to feed it (item 6)
        assert read_metadata(out / name) == {"value_range": "signed", "inputs": ["image"], "layout": "NCHW" if name.endswith(".onnx") else "NHWC"}


def test_a_full_disk_during_export_is_one_sentence_and_keeps_the_earlier_export(tiny_ckpt, tmp_path, monkeypatch, capsys):
    import errno

    from bokeh.export import __main__ as export_main
    from bokeh.export import pipeline

    out = tmp_path / "tflite"
    out.mkdir()
    (out / "report.json").write_text("{}")
    monkeypatch.setattr(pipeline, "_steps", quick_steps(("bokeh.onnx",)))
    write_text = Path.write_text

    def full(self, *args, **kwargs):
        if self.name == "report.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(SystemExit) as exited:  # the CLI's body, on the config its Hydra decorator composes
        export_main.main.__wrapped__(compose_export(f"ckpt={tiny_ckpt}", f"out={out}", "overwrite=true"))
    err = capsys.readouterr().err
    assert exited.value.code == 1 and "Traceback" not in err
    assert "No space left on device" in err and "free some space" in err
    assert sorted(p.name for p in out.iterdir()) == ["report.json"] and (out / "report.json").read_text() == "{}"
