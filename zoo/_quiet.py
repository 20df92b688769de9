"""TensorFlow imported without its start-up noise, for the library and the command line.

TensorFlow writes a few lines while it loads, before its logging is set up, so
TF_CPP_MIN_LOG_LEVEL does not reach them: absl's preamble, the oneDNN notice and, on a
machine without an NVIDIA driver, its CUDA probe's lines about a GPU that is not there
(`Could not find cuda drivers`, `failed call to cuInit`). The C++ INFO and WARNING lines
after them (the CPU features) obey the level. A user
who asked for TensorFlow's INFO or WARNING lines (TF_CPP_MIN_LOG_LEVEL 0 or 1) gets all
of them.
"""

import contextlib
import glob
import os
import sys
import tempfile

# INFO lines written before the log level applies, once per TF library (so twice).
LOAD_NOISE = ("All log messages before absl::InitializeLog() is called", "oneDNN custom operations are on")
# Every line the CUDA probe writes where there is no driver is about the absent GPU.
NO_GPU_NOISE = ("Could not find cuda drivers", "failed call to cuInit")


def gpu_expected():
    """Whether this machine may have a CUDA GPU for TensorFlow (Linux with an NVIDIA driver)."""
    return sys.platform != "linux" or os.path.exists("/proc/driver/nvidia") or bool(glob.glob("/dev/nvidia*"))


@contextlib.contextmanager
def without_stderr_lines(patterns):
    """Within the block, file descriptor 2 goes to a temporary file; after it, every line
    written there that contains none of `patterns` is written to stderr. Without a file
    descriptor 2 to redirect, the block runs as it is."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                    if not any(p in line for p in patterns)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def quiet_tensorflow():
    """Imports TensorFlow quietly (a no-op once it is imported): its C++ INFO and WARNING
    lines off unless TF_CPP_MIN_LOG_LEVEL says otherwise (errors still show), and unless
    the user asked for INFO or WARNING lines, the lines written before that level applies
    dropped (`LOAD_NOISE`, and `NO_GPU_NOISE` where no GPU can be: where one may be, TF
    reports what it finds); every other line is kept."""
    if "tensorflow" in sys.modules:
        return
    if os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2") in ("0", "1"):
        return
    no_gpu = not gpu_expected()
    with without_stderr_lines(LOAD_NOISE + (NO_GPU_NOISE if no_gpu else ())):
        import tensorflow as tf
        if no_gpu:
            tf.config.list_physical_devices("GPU")  # the probe (cuInit) runs here, once
