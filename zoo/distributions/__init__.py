"""TFP distributions the models need. Everything here computes in float32."""

from zoo.distributions.categorical import sample_categorical
from zoo.distributions.discretized_logistic_mixture import DiscretizedLogisticMixture, logistic_bin_log_mass

__all__ = ["DiscretizedLogisticMixture", "logistic_bin_log_mass", "sample_categorical"]
