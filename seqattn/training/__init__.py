"""One training engine for every seqattn model: ``fit`` (seqattn.training.engine) and what it shares.

engine.py       fit(), FitSettings, the Task protocol and the model contract (LossModule)
options.py      the model vocabulary of every train command (ModelOptions)
output.py       the --out guard and lock
checkpoint.py   atomic checkpoints without pickles
distributed.py  torchrun + DistributedDataParallel (gloo on the CPU, nccl on CUDA)
schedule.py     warm-up + cosine decay, checkpoint averaging
"""

from seqattn.training.engine import FitSettings, LossModule, Reporter, Task, fit
from seqattn.training.options import ModelOptions

__all__ = ["FitSettings", "LossModule", "ModelOptions", "Reporter", "Task", "fit"]
