"""Pure ``nn.Module`` networks: no Lightning, no Hydra, no I/O."""

from bokeh.models.glassnet import GlassNet
from bokeh.models.norms import PoolInstanceNorm2d, to_pool_instance_norm

__all__ = ["GlassNet", "PoolInstanceNorm2d", "to_pool_instance_norm"]
