"""skorch callbacks that change a loss's parameter as training goes on.

Imported only when a deep hasher is fitted (it imports skorch).
"""

from skorch.callbacks import Callback


class IterationSchedule(Callback):
    """Set ``criterion_.<attribute>`` to ``value_at(t)`` every ``step_size``
    training iterations (mini-batches), ``t`` being the iterations done."""

    attribute = None

    def __init__(self, step_size):
        self.step_size = step_size

    def value_at(self, iteration):
        raise NotImplementedError

    def on_train_begin(self, net, **kwargs):
        self.iteration_ = 0
        setattr(net.criterion_, self.attribute, self.value_at(0))

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if not training:
            return
        if self.iteration_ % self.step_size == 0:
            setattr(net.criterion_, self.attribute, self.value_at(self.iteration_))
        self.iteration_ += 1


class BetaContinuation(IterationSchedule):
    """HashNet's continuation: ``beta = (1 + gamma * t) ** power``."""

    attribute = "beta"

    def __init__(self, gamma, power, step_size):
        super().__init__(step_size)
        self.gamma = gamma
        self.power = power

    def value_at(self, iteration):
        return (1 + self.gamma * iteration) ** self.power


class EpsilonDecay(IterationSchedule):
    """DNNH's threshold width: ``epsilon * decay ** (t // step_size)``."""

    attribute = "epsilon"

    def __init__(self, epsilon, decay, step_size):
        super().__init__(step_size)
        self.epsilon = epsilon
        self.decay = decay

    def value_at(self, iteration):
        return self.epsilon * self.decay ** (iteration // self.step_size)
