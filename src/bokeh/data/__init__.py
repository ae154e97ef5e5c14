"""Data: synthetic bokeh pairs (scene, optics, synthetic, synthesize), the EBB! pair reader (pairs,
transforms, layout) and the LightningDataModules (datamodules)."""
