"""TFP distributions the models need. Everything here computes in float32."""

from zoo.distributions.categorical import sample_categorical, seeded_draws
from zoo.distributions.discretized_logistic_mixture import (DiscretizedLogisticMixture, logistic_bin_log_mass,
                                                           mixture_from_params, mixture_num_params)
from zoo.distributions.made_mixture import made_mixture_log_prob, made_mixture_sample, mixture_log_prob
from zoo.distributions.normal import standard_normal_log_prob

__all__ = ["DiscretizedLogisticMixture", "logistic_bin_log_mass", "made_mixture_log_prob",
           "made_mixture_sample", "mixture_from_params", "mixture_log_prob", "mixture_num_params",
           "sample_categorical", "seeded_draws", "standard_normal_log_prob"]
