"""The input pipeline: seeded epoch-by-epoch batches (a resumed run sees the batches an
uninterrupted one would), Keras inputs, and their split across workers and replicas."""


import numpy as np
import tensorflow as tf


IN_MEMORY_BYTES = 2**30  # training sets up to this size are held in memory


def perturb(images, rate, num_levels, seed):
    """Ren et al. 2019's input perturbation (their Algorithm 1): each pixel value is, with
    probability `rate`, replaced by a level drawn uniformly from `[0, num_levels)`.

    images: integer `[batch, H, W, C]`; seed: a stateless seed `[2]`. The same seed
    perturbs the same pixels, so a resumed run sees the batches an uninterrupted one would.
    """
    mask_seed, value_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    replace = tf.random.stateless_uniform(tf.shape(images), mask_seed) < rate
    levels = tf.random.stateless_uniform(tf.shape(images), value_seed, minval=0, maxval=num_levels,
                                         dtype=tf.int32)
    return tf.where(replace, tf.cast(levels, images.dtype), images)


def _perturbed(batches, perturbation, seed, epoch):
    """`batches` with `perturb` applied to their images (labels kept), batch i of `epoch`
    seeded by (seed, epoch, i). `perturbation`: None or `(rate, num_levels)`."""
    if perturbation is None:
        return batches
    rate, num_levels = perturbation

    def apply(i, batch):
        key = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64) * 2**32 + i])
        images = batch[0] if isinstance(batch, tuple) else batch
        images = perturb(images, rate, num_levels, key)
        return (images, *batch[1:]) if isinstance(batch, tuple) else images

    return batches.enumerate().map(lambda i, *b: apply(i, b if len(b) > 1 else b[0]))


def epoch_batches(examples, batch_size, seed, first_epoch=0, shuffle_buffer=20_000, perturbation=None):
    """An endless stream of full batches, epoch after epoch.

    `examples` holds single images, or `(image, label)` pairs (batched alike). A
    training set of at most `IN_MEMORY_BYTES` is held in memory and epoch e is
    the permutation drawn by a stateless shuffle with seed (seed, e): a run resumed
    at epoch e sees exactly the batches an uninterrupted run would. A larger one is
    streamed through a `shuffle_buffer` reshuffled each pass (resume then restores
    weights and optimizer, but not the data order). Batches are full
    (`drop_remainder`) so every step has the global batch size. `perturbation`
    `(rate, num_levels)` perturbs every batch's images afresh (`perturb`).
    """
    size = examples.cardinality()
    specs = tf.nest.flatten(examples.element_spec)
    nbytes = int(size) * sum(int(np.prod(s.shape)) * s.dtype.size for s in specs) if size >= 0 else -1
    if not 0 <= nbytes <= IN_MEMORY_BYTES:
        stream = examples.shuffle(shuffle_buffer, seed=seed).repeat().batch(batch_size, drop_remainder=True)
        return _perturbed(stream, perturbation, seed, first_epoch).prefetch(tf.data.AUTOTUNE)
    parts = [tf.nest.flatten(b) for b in examples.batch(8192).as_numpy_iterator()]
    arrays = tf.nest.pack_sequence_as(examples.element_spec, [np.concatenate(p) for p in zip(*parts)])
    count = sum(len(p[0]) for p in parts)
    pool = tf.data.Dataset.from_tensors(arrays).cache()

    def one_epoch(epoch, pool):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        batches = tf.data.Dataset.from_tensor_slices(
            tf.nest.map_structure(lambda a: tf.gather(a, order), pool)).batch(batch_size, drop_remainder=True)
        return _perturbed(batches, perturbation, seed, epoch)

    epochs = tf.data.Dataset.range(first_epoch, 2**62)
    return (tf.data.Dataset.zip(epochs, pool.repeat()).flat_map(one_epoch)
            .prefetch(tf.data.AUTOTUNE))


def model_inputs(batches):
    """Batches as Keras' `x`: `(images, labels)` pairs become one input, `((images,
    labels),)`, so `fit`/`predict` do not read the labels as targets."""
    if isinstance(batches.element_spec, tuple):
        return batches.map(lambda *pair: (pair,))
    return batches


def distributed_batches(strategy, examples, batch_size, seed, first_epoch=0, perturbation=None):
    """`epoch_batches` split across the strategy's workers and replicas, as model inputs.

    Every worker builds the same stream of global batches and keeps its own slice,
    which its replicas split again: the update is that of the global batch on one
    device, for one process, one machine's GPUs or several machines alike.
    """
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return model_inputs(epoch_batches(examples, batch_size, seed, first_epoch, perturbation=perturbation))
    if batch_size % replicas:
        raise ValueError(f"The global batch_size {batch_size} must be divisible by the {replicas} replicas.")

    def pipeline(context):
        share = batch_size // context.num_input_pipelines
        start = context.input_pipeline_id * share

        def my_slice(*batch):
            return tf.nest.map_structure(lambda t: t[start:start + share], batch if len(batch) > 1 else batch[0])
        stream = epoch_batches(examples, batch_size, seed, first_epoch, perturbation=perturbation).map(my_slice)
        return model_inputs(stream.unbatch().batch(context.get_per_replica_batch_size(batch_size),
                                                   drop_remainder=True))
    return strategy.distribute_datasets_from_function(pipeline)


def with_shard_policy(dataset, policy):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy
    return dataset.with_options(options)
