"""TensorFlow's start-up chatter, hidden from the command line unless the user asks for it.

Importing TensorFlow and touching its devices for the first time writes lines such as "oneDNN
custom operations are on" and "Could not find cuda drivers" to the process's stderr from C++,
past Python and past TF_CPP_MIN_LOG_LEVEL. They say nothing to our users, so the command line
loads TensorFlow with file descriptor 2 captured, then writes back every captured line that is
not such a notice (a real error still shows). `pixelrnn --verbose` leaves stderr alone.
"""

import contextlib
import os
import re
import sys
import tempfile

STARTUP_NOTICES = re.compile(
    "|".join(
        [
            r"All log messages before absl::InitializeLog\(\) is called",
            r"oneDNN custom operations are on",
            r"Could not find cuda drivers",
            r"failed call to cuInit",
            r"This TensorFlow binary is optimized",
            r"To enable the following instructions",
            r"Unable to register cu(DNN|FFT|BLAS) factory",
            r"TF-TRT Warning",
            r"computation placer already registered",
        ]
    )
)


@contextlib.contextmanager
def filtered_native_stderr(pattern=STARTUP_NOTICES):
    """Capture what is written to file descriptor 2 inside the block; afterwards write back the
    lines that do not match `pattern`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines(True) if not pattern.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def load_tensorflow(verbose=False):
    """Import pixelrnn_tf (which selects Keras 2 and imports TensorFlow) and initialise the device
    list, quietly unless verbose."""
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")
    context = contextlib.nullcontext() if verbose else filtered_native_stderr()
    with context:
        from pixelrnn_tf._keras import tf

        tf.config.list_physical_devices()
