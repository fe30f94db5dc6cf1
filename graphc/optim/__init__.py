"""graphc.optim: optimizers and learning-rate schedulers, as ``torch.optim``.

Every optimizer computes its update with numpy on the parameters' buffers, outside autograd, and
commits all new values only once every one of them is computed: a step that raises changes nothing.
"""
from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Adadelta", "Adagrad", "Adam", "AdamW", "LBFGS", "lr_scheduler", "Optimizer", "RMSprop", "SGD"]
