"""Training and evaluation engine: `fit` (trainer), `train_one_epoch`, `evaluate`, checkpoints,
torchrun helpers and the sweep runner."""

from fermixnet.engine.eval_run import evaluate_checkpoint
from fermixnet.engine.evaluate import EvalResult, evaluate
from fermixnet.engine.loop import TrainingDivergedError, train_one_epoch
from fermixnet.engine.preemption import TrainingStopped
from fermixnet.engine.trainer import FitResult, fit

__all__ = ["EvalResult", "FitResult", "TrainingDivergedError", "TrainingStopped", "evaluate",
           "evaluate_checkpoint", "fit", "train_one_epoch"]
