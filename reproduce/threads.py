"""The command lines' thread flags: `--intra-op-threads N --inter-op-threads M`
(`zoo.training.set_threads`), for `python -m reproduce` and `python -m reproduce bench`."""

import argparse


def positive_int(text):
    """argparse type: an int >= 1 (argparse's error then names the flag)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_thread_args(parser):
    """Adds both flags to an `argparse` parser (default None: TF's choice)."""
    parser.add_argument("--intra-op-threads", type=positive_int, metavar="N",
                        help="threads one TF op may use (default: TF's, all cores); 1 on 2 cores trains faster")
    parser.add_argument("--inter-op-threads", type=positive_int, metavar="N",
                        help="TF ops run at a time (default: TF's); 2 on 2 cores, with --intra-op-threads 1")


def apply_thread_args(args):
    """`zoo.training.set_threads` from parsed flags, before TF runs anything."""
    from zoo.training import set_threads
    return set_threads(args.intra_op_threads, args.inter_op_threads)


def thread_flags():
    """The flags that give TF's thread pools their present sizes ("" at TF's defaults): how
    a record states the command that ran."""
    import tensorflow as tf
    pools = (("intra-op", tf.config.threading.get_intra_op_parallelism_threads()),
             ("inter-op", tf.config.threading.get_inter_op_parallelism_threads()))
    return " ".join(f"--{name}-threads {n}" for name, n in pools if n)
