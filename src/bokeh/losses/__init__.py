"""Loss callables on tensors: no Lightning, no Hydra, no I/O, no optimizer steps."""
