"""The shares a data mix draws (bokeh.data.mix + ResumableSampler), from the sources' sizes alone (no images):
    PYTHONPATH=src python benchmarks/data_mix.py"""

from bokeh.data.mix import Mix, Source
from bokeh.data.sampling import ResumableSampler
def drawn(sources, epoch_size, seed=0, epochs=1):
    mix = Mix(tuple(Source(n, n, p, s) for n, p, s in sources), epoch_size)
    sampler = ResumableSampler(range(mix.size), seed=seed, weights=mix.weights(), num_samples=epoch_size)
    tot = {}
    for e in range(epochs):
        for k, v in mix.counts(sampler.epoch_indices(e)).items(): tot[k] = tot.get(k, 0) + v
    n = sum(tot.values()); return {k: round(v / n, 4) for k, v in tot.items()}
print("184 synthetic + 1184 portraits, share 0.5, default epoch 368, 10 epochs:", drawn([("synthetic", 184, .5), ("portraits", 1184, .5)], 368, epochs=10))
print("weights [1,10], 12+12 pairs beside 4 scenes, share 0.5, 20000 draws:", drawn([("synthetic", 4, .5), ("a", 12, .5/11), ("b", 12, 5/11)], 20000))
print("share 0.2, 16 photo pairs beside 4 scenes, 20000 draws:", drawn([("synthetic", 4, .8), ("photos", 16, .2)], 20000))
print("experiment=reference sizes (3000/450/293/1184, share 0.6, weights 1:1:2), epoch 7500:", drawn([("synthetic", 3000, .4), ("bsds", 450, .15), ("sod", 293, .15), ("portraits", 1184, .3)], 7500))
