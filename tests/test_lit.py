"""The LightningModule: overfitting, checkpoints, resume, and who trains on which step."""

import subprocess
import sys
import textwrap

import kornia
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from bokeh.checkpoint import load_generator
from bokeh.lit import BokehGAN

TINY = {"width1": 4, "width2": 4, "blocks": 1}
TINY_CRITIC = {"depths": [3], "ndf": 4}


class BlurPairs(Dataset):
    """Seeded smooth images and a blurred copy as target: a small, learnable bokeh-like mapping."""

    def __init__(self, count: int = 2, size: tuple[int, int] = (32, 48), seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        base = torch.rand(count, 3, size[0] // 4, size[1] // 4, generator=generator)
        sharp = torch.nn.functional.interpolate(base, size=size, mode="bilinear", align_corners=False)
        self.inputs = sharp * 2 - 1
        self.targets = kornia.filters.gaussian_blur2d(sharp, (7, 7), (2.0, 2.0)) * 2 - 1

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict:
        return {"input": self.inputs[index], "target": self.targets[index], "name": f"{index}.jpg"}


def loader(count: int = 2, **kwargs) -> DataLoader:
    return DataLoader(BlurPairs(count, **kwargs), batch_size=1, shuffle=False)


def trainer(tmp_path, **kwargs) -> pl.Trainer:
    options = dict(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return pl.Trainer(**options)


def test_overfits_one_seeded_batch(tmp_path):
    torch.manual_seed(0)
    module = BokehGAN(generator={"width1": 8, "width2": 16, "blocks": 1}, optim={"lr_g": 2e-3})
    batch = BlurPairs(1)[0]
    batch = {k: v[None] for k, v in batch.items() if k != "name"}
    with torch.no_grad():
        before = (module(batch["input"]) - batch["target"]).abs().mean().item()
    trainer(tmp_path, max_steps=60, enable_checkpointing=False).fit(module, loader(1))
    with torch.no_grad():
        after = (module(batch["input"]) - batch["target"]).abs().mean().item()
    assert after <= 0.5 * before, (before, after)


def test_checkpoint_round_trip_in_fresh_process(tmp_path):
    module = BokehGAN(generator=TINY)
    fit = trainer(tmp_path, max_steps=2, enable_checkpointing=False)
    fit.fit(module, loader(2))
    path = tmp_path / "model.ckpt"
    fit.save_checkpoint(path)
    image = BlurPairs(1)[0]["input"][None]
    torch.save(image, tmp_path / "image.pt")
    with torch.no_grad():
        expected = module.eval()(image)
    script = textwrap.dedent(f"""
        import torch
        from bokeh.lit import BokehGAN
        module = BokehGAN.load_from_checkpoint({str(path)!r}, map_location="cpu").eval()
        image = torch.load({str(tmp_path / 'image.pt')!r})
        with torch.no_grad():
            torch.save(module(image), {str(tmp_path / 'out.pt')!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), expected, atol=0, rtol=0)
    # the Lightning-free loader gives the same network
    with torch.no_grad():
        torch.testing.assert_close(load_generator(path)(image)[0], expected, atol=0, rtol=0)


def test_checkpoint_loads_with_default_weights_only(tmp_path):
    module = BokehGAN(generator=TINY, stage="finetune", critic=TINY_CRITIC, loss={"vgg": {"weight": 0.0}})
    fit = trainer(tmp_path, max_steps=2, enable_checkpointing=False)
    fit.fit(module, loader(2))
    fit.save_checkpoint(tmp_path / "f.ckpt")
    checkpoint = torch.load(tmp_path / "f.ckpt")  # default weights_only=True
    assert checkpoint["hyper_parameters"]["stage"] == "finetune"
    assert any(k.startswith("critics.") for k in checkpoint["state_dict"])


def test_resume_continues_at_saved_step(tmp_path):
    first = trainer(tmp_path / "a", max_steps=3)
    first.fit(BokehGAN(generator=TINY), loader(4))
    last = tmp_path / "a" / "checkpoints"
    saved = sorted(last.glob("*.ckpt"))
    assert saved, "a checkpoint must exist after the first run"
    second = trainer(tmp_path / "b", max_steps=5)
    module = BokehGAN(generator=TINY)
    steps_seen = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            steps_seen.append(trainer.global_step)

    second.callbacks.append(Record())
    second.fit(module, loader(4), ckpt_path=saved[-1])
    assert steps_seen[0] == 3
    assert second.global_step == 5


def _snapshot(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict, module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


class StepSpy(pl.Callback):
    """Which parameters changed during each training batch."""

    def __init__(self) -> None:
        self.changes = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.before = tuple(_snapshot(m) if m is not None else {} for m in (module.generator, module.critics, module.vgg))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        generator, critics, vgg = self.before
        self.changes.append(tuple(
            m is not None and _changed(before, m)
            for before, m in zip(self.before, (module.generator, module.critics, module.vgg))
        ))


def test_finetune_steps_touch_only_their_network(tmp_path):
    module = BokehGAN(
        generator=TINY, stage="finetune", critic=TINY_CRITIC,
        loss={"vgg": {"weight": 0.1, "weights": "random"}}, optim={"n_critic": 2},
    )
    spy = StepSpy()
    trainer(tmp_path, max_steps=4, enable_checkpointing=False, callbacks=[spy]).fit(module, loader(4))
    # batch 0: critic only; batch 1: critic then generator (n_critic=2); VGG never changes
    assert spy.changes[0] == (False, True, False)
    assert spy.changes[1] == (True, True, False)
    assert all(not vgg for _, _, vgg in spy.changes)
    assert not any(p.requires_grad for p in module.vgg.parameters())


def test_generator_step_leaves_critics_untouched(tmp_path):
    module = BokehGAN(generator=TINY, stage="finetune", critic=TINY_CRITIC)
    after_critic_step = []
    critic_step = module._critic_step

    def recording_critic_step(*args, **kwargs):
        critic_step(*args, **kwargs)
        after_critic_step.append(_snapshot(module.critics))

    module._critic_step = recording_critic_step
    spy = StepSpy()
    trainer(tmp_path, max_steps=4, enable_checkpointing=False, callbacks=[spy]).fit(module, loader(2))
    assert len(after_critic_step) == 2 and all(g and c for g, c, _ in spy.changes)
    # the generator step came after the last critic step and left the critics as that step left them
    assert not _changed(after_critic_step[-1], module.critics)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stage": "middle"}, "stage"),
        ({"loss": {"l1": -1.0}}, "loss.l1"),
        ({"loss": {"perceptual": 1.0}}, "unknown loss"),
        ({"optim": {"n_critic": 0}}, "n_critic"),
        ({"generator": {"width1": 0}}, "width1"),
        ({"loss": {"vgg": {"weight": -0.1}}}, "loss.vgg.weight"),
        ({"optim": {"schedule": "linear"}}, "optim.schedule"),
    ],
)
def test_bad_settings_fail_with_their_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BokehGAN(**kwargs)


class LearningRates(pl.Callback):
    """Each optimizer's learning rate at the start of every training batch."""

    def __init__(self) -> None:
        self.rates = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.rates.append([o.param_groups[0]["lr"] for o in trainer.optimizers])


@pytest.mark.parametrize(
    ("stage", "n_critic", "max_steps", "batches"),
    [("pretrain", 1, 8, 8), ("finetune", 1, 16, 8), ("finetune", 3, 8, 6)],
)
def test_cosine_schedule_falls_to_zero_over_the_run(tmp_path, stage, n_critic, max_steps, batches):
    """max_steps counts optimizer steps; the schedule counts batches and ends at lr 0 on the last one."""
    module = BokehGAN(generator=TINY, stage=stage, critic=TINY_CRITIC,
                      optim={"lr_g": 1e-3, "lr_d": 2e-3, "schedule": "cosine", "n_critic": n_critic})
    spy = LearningRates()
    fit = trainer(tmp_path, max_steps=max_steps, enable_checkpointing=False, callbacks=[spy])
    fit.fit(module, loader(batches))
    assert len(spy.rates) == batches
    first, middle = spy.rates[0], spy.rates[batches // 2]
    assert first == pytest.approx([1e-3, 2e-3][: len(first)])
    assert middle == pytest.approx([r / 2 for r in first])  # half way down a half cosine
    assert [o.param_groups[0]["lr"] for o in fit.optimizers] == pytest.approx([0.0] * len(first), abs=1e-12)


def test_cosine_schedule_needs_a_known_length(tmp_path):
    module = BokehGAN(generator=TINY, optim={"schedule": "cosine"})
    with pytest.raises(ValueError, match="max_steps"):
        trainer(tmp_path, max_epochs=-1, max_time="00:00:00:05", enable_checkpointing=False).fit(module, loader(2))


def test_resume_keeps_the_cosine_schedule(tmp_path):
    """A run killed after 3 of 6 batches and resumed sees the rest of the same schedule."""
    whole = LearningRates()
    every_3 = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "whole", filename="s{step}", auto_insert_metric_name=False, every_n_train_steps=3, save_top_k=-1)
    trainer(tmp_path / "whole", max_steps=6, callbacks=[whole, every_3]).fit(
        BokehGAN(generator=TINY, optim={"schedule": "cosine"}), loader(6))
    resumed = LearningRates()
    trainer(tmp_path / "b", max_steps=6, callbacks=[resumed]).fit(
        BokehGAN(generator=TINY, optim={"schedule": "cosine"}), loader(6), ckpt_path=tmp_path / "whole" / "s3.ckpt")
    assert len(resumed.rates) == 3
    assert [r[0] for r in resumed.rates] == pytest.approx([r[0] for r in whole.rates[3:]])
    assert resumed.rates[0][0] < whole.rates[0][0]


def test_loss_optim_and_critic_defaults_come_from_the_conf_files_alone(tmp_path, monkeypatch):
    """conf/loss/bggan.yaml is the one home of the loss defaults: a module given no loss dict (or part
    of one) takes the rest from it, and a changed file changes the module."""
    import shutil

    import yaml

    import bokeh.config

    defaults = yaml.safe_load((bokeh.config.CONF_DIR / "loss" / "bggan.yaml").read_text())
    assert BokehGAN(generator=TINY).hparams.loss == defaults
    hparams = BokehGAN(generator=TINY).hparams  # so do the optimizer's and the critics'
    assert hparams.optim == yaml.safe_load((bokeh.config.CONF_DIR / "optim" / "adam.yaml").read_text())
    assert hparams.critic == yaml.safe_load((bokeh.config.CONF_DIR / "critic" / "patchgan.yaml").read_text())
    assert BokehGAN(generator=TINY, loss={"gradient": 0.25}).hparams.loss == {**defaults, "gradient": 0.25}
    conf = tmp_path / "conf"
    shutil.copytree(bokeh.config.CONF_DIR, conf)
    (conf / "loss" / "bggan.yaml").write_text((conf / "loss" / "bggan.yaml").read_text().replace("l1: 0.5", "l1: 0.7"))
    monkeypatch.setattr(bokeh.config, "CONF_DIR", conf)
    assert BokehGAN(generator=TINY).hparams.loss["l1"] == 0.7


def test_a_checkpoint_from_before_newer_loss_terms_still_loads(tmp_path):
    """Runs save their loss dict in hparams; one written before the gradient, matte and focus_weight
    keys existed loads with torch's weights_only=True loader and gets those terms switched off."""
    module = BokehGAN(generator=TINY)
    fit = trainer(tmp_path, max_steps=1, enable_checkpointing=False)
    fit.fit(module, loader(1))
    path = tmp_path / "old.ckpt"
    fit.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"]["loss"] = {"l1": 0.5, "ssim": 0.05, "rough_l1": 0.0, "adv": 0.0, "gp": 10.0,
                                              "vgg": {"weight": 0.0, "weights": "imagenet"}}
    torch.save(checkpoint, path)
    loaded = BokehGAN.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    assert loaded.hparams.loss["matte"]["weight"] == 0 and loaded.hparams.loss["gradient"] == 0
    assert loaded.hparams.loss["focus_weight"] == 0 and loaded.hparams.loss["l1"] == 0.5
    image = BlurPairs(1)[0]["input"][None]
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(image), module.eval()(image), atol=0, rtol=0)
