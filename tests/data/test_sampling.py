"""The resumable training order: seeded per epoch, split over DDP ranks without duplicates, resumable mid-epoch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from bokeh.data.datamodules import SyntheticDataModule
from bokeh.data.sampling import ResumableLoader, ResumableSampler, crop_seed


def keys(sampler: ResumableSampler, epoch: int) -> list[tuple[int, int]]:
    sampler.set_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize("size", [10, 11])
def test_two_ranks_split_each_epoch_without_duplicates(size):
    data = range(size)
    for epoch in range(3):
        shares = [[i for i, _ in keys(ResumableSampler(data, seed=7, num_replicas=2, rank=r), epoch)] for r in range(2)]
        assert len(shares[0]) == len(shares[1]) == size // 2
        assert not set(shares[0]) & set(shares[1]), "an item on both ranks"
        assert len(set(shares[0]) | set(shares[1])) == 2 * (size // 2), "an item twice on one rank"
    one = ResumableSampler(data, seed=7)
    assert sorted(i for i, _ in keys(one, 0)) == list(range(size))
    assert [i for i, _ in keys(one, 0)] != [i for i, _ in keys(one, 1)], "each epoch has its own order"
    assert keys(one, 1) == keys(ResumableSampler(data, seed=7), 1), "the order is a function of (seed, epoch)"


def test_crop_seeds_differ_by_item_and_epoch_and_ride_with_the_index():
    sampler = ResumableSampler(range(6), seed=3)
    first, second = keys(sampler, 0), keys(sampler, 1)
    assert all(seed == crop_seed(3, 0, index) for index, seed in first)
    assert len({seed for _, seed in first + second}) == 12


def test_too_few_items_for_the_ranks_is_a_clear_error():
    with pytest.raises(ValueError, match="3 training items cannot be split over 4 processes"):
        ResumableSampler(range(3), num_replicas=4, rank=0)


@pytest.fixture
def datamodule(tmp_path):
    dm = SyntheticDataModule(n=9, size=(32, 48), val_count=1, crop_size=(16, 24), batch_size=2, seed=5, on_the_fly=True, cache_dir=str(tmp_path))
    dm.setup("fit")
    return dm


def as_list(loader) -> list[dict]:
    return [{"name": list(b["name"]), "input": b["input"]} for b in loader]


def test_a_loader_restored_mid_epoch_serves_the_rest_of_that_epoch(datamodule):
    loader = datamodule.train_dataloader()
    assert isinstance(loader, ResumableLoader) and len(loader) == 4
    loader.sampler.set_epoch(2)
    full = as_list(loader)
    served = iter(loader)
    next(served), next(served)  # two batches trained, then a checkpoint
    state = loader.state_dict()
    assert state == {"epoch": 2, "samples": 4}

    resumed = datamodule.train_dataloader()  # a fresh process: new loader, same settings
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)
    rest = as_list(resumed)
    assert [b["name"] for b in rest] == [b["name"] for b in full[2:]]
    assert all(torch.equal(a["input"], b["input"]) for a, b in zip(rest, full[2:])), "the same crops and flips"
    assert resumed.state_dict() == {"epoch": 2, "samples": 8}
    resumed.sampler.set_epoch(3)
    assert len(as_list(resumed)) == 4, "the skip applies to the resumed epoch only"


def test_a_loader_restored_at_the_end_of_an_epoch_starts_the_next_one_whole(datamodule):
    trainer = SimpleNamespace(world_size=1, global_rank=0, current_epoch=0)
    datamodule.trainer = trainer
    loader = datamodule.train_dataloader()
    as_list(loader)  # epoch 0, whole
    state = loader.state_dict()
    assert state == {"epoch": 0, "samples": 8}
    trainer.current_epoch = 1
    expected = as_list(loader)  # the uninterrupted run's epoch 1

    resumed = datamodule.train_dataloader()
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)  # Lightning 2.6 passes one too many after such a resume: trainer.current_epoch wins
    assert [b["name"] for b in as_list(resumed)] == [b["name"] for b in expected]


def test_under_ddp_the_datamodule_gives_each_rank_its_own_share(datamodule):
    names = []
    for rank in range(2):
        datamodule.trainer = SimpleNamespace(world_size=2, global_rank=rank, current_epoch=0)
        loader = datamodule.train_dataloader()
        assert loader.sampler.num_replicas == 2 and loader.sampler.rank == rank
        names.append([n for batch in loader for n in batch["name"]])
    assert len(names[0]) == len(names[1]) == 4 and not set(names[0]) & set(names[1])


def test_a_resume_with_another_batch_size_skips_the_items_already_trained_on(datamodule, tmp_path):
    loader = datamodule.train_dataloader()  # batch 2
    order = [n for batch in loader for n in batch["name"]]
    served = iter(loader)
    next(served)  # 2 items trained, then a checkpoint
    state = loader.state_dict()
    smaller = SyntheticDataModule(n=9, size=(32, 48), val_count=1, crop_size=(16, 24), batch_size=1, seed=5, on_the_fly=True, cache_dir=str(tmp_path))
    smaller.setup("fit")
    resumed = smaller.train_dataloader()
    resumed.load_state_dict(state)
    assert [n for batch in resumed for n in batch["name"]] == order[2:]


def test_a_foreign_loader_state_is_refused():
    loader = ResumableLoader(range(4), ResumableSampler(range(4)), batch_size=2)
    with pytest.raises(ValueError, match="not a ResumableLoader state"):
        loader.load_state_dict({"epoch": 0, "batches": 1})
