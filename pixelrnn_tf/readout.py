"""Running a cell over a clip in windows of K frames, and reading the sensor out.

The hidden state is reset at the start of every window of K frames and the readout is taken at
its end (PixelRNN: o at the window's last frame; raw and difference cameras: every frame of the
window). Clips (B, T, H, W, C) become readouts (B, T/K, H', W', C').
"""

from pixelrnn_tf import cells as cells_module
from pixelrnn_tf._keras import tf
from pixelrnn_tf.noise import add_analog_noise, check_stddev
from pixelrnn_tf.shapes import check_clip_shape

_register = tf.keras.utils.register_keras_serializable(package="pixelrnn_tf")


@_register
class InPixelRecurrence(tf.keras.Model):
    """Runs `cell` over each window of K frames, with the state reset at the window's start.

    Output (B, T/K, H, W, 1) for cells read out once per window, (B, T/K, H, W, K) for cells read
    out every frame (the K frames of a window stacked as channels). The windows of a clip run as
    one batch through the cell's `run_window` (K steps unrolled in the graph, K small and fixed).
    A Keras Model, so that larq's profile reaches the cell's kernel layers.
    """

    def __init__(self, cell, window=16, unroll=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(cell, dict):
            cell = tf.keras.layers.deserialize(cell)
        if not isinstance(cell, cells_module.InPixelCell):
            raise TypeError(f"InPixelRecurrence needs an InPixelCell, got {type(cell).__name__}.")
        if window < 1:
            raise ValueError(f"The readout window K must be >= 1, got {window}.")
        self.cell = cell
        self.window = int(window)
        # pixelrnn-tf 0.1 ran tf.keras.layers.RNN and could leave it rolled; the window loop is now
        # always unrolled, and the option is kept so that saved configs still load
        self.unroll = bool(unroll)

    def build(self, input_shape):
        check_clip_shape(input_shape, self.cell.height, self.cell.width, input_shape[-1], self.window)
        if not self.cell.built:
            self.cell.build((None,) + tuple(input_shape[2:]))
        tf.keras.layers.Layer.build(self, input_shape)  # Model.build would trace call() once more

    def call(self, clips, training=None):
        check_clip_shape(clips.shape, self.cell.height, self.cell.width, clips.shape[-1], self.window)
        shape = tf.shape(clips)
        batch, frames = shape[0], shape[1]
        windows = frames // self.window
        x = tf.reshape(clips, tf.concat([[batch * windows, self.window], shape[2:]], axis=0))
        if self.cell.stateless:
            out = x if self.cell.readout_every_frame else tf.unstack(x, num=self.window, axis=1)[-1]
        else:
            out = self.cell.run_window(x, bool(training))
        if self.cell.readout_every_frame:
            # (B*W, K, H, Wd, 1) -> (B*W, H, Wd, K): the window's frames as channels
            out = tf.transpose(out[..., 0], [0, 2, 3, 1])
        return tf.reshape(out, tf.concat([[batch, windows], tf.shape(out)[1:]], axis=0))

    def compute_output_shape(self, input_shape):
        b, t, h, w, _ = input_shape
        windows = None if t is None else t // self.window
        channels = self.window if self.cell.readout_every_frame else 1
        return tf.TensorShape([b, windows, h, w, channels])

    def get_config(self):
        return {
            **tf.keras.layers.Layer.get_config(self),  # Model.get_config is empty for subclasses
            "cell": tf.keras.layers.serialize(self.cell),
            "window": self.window,
            "unroll": self.unroll,
        }


def pool_planes(x, pool):
    """Max-pool every plane of x (B, N, H, W, C) by `pool`, floor pooling ("VALID": a pool that does
    not divide H drops the last H mod pool rows)."""
    if pool == 1:
        return x
    shape = tf.shape(x)
    planes = tf.reshape(x, tf.concat([[-1], shape[2:]], axis=0))
    planes = tf.nn.max_pool2d(planes, pool, pool, "VALID")
    return tf.reshape(planes, tf.concat([shape[:2], tf.shape(planes)[1:]], axis=0))


@_register
class FramePool(tf.keras.layers.Layer):
    """Max-pools every frame of a clip (B, T, H, W, C) by `pool_size` (floor pooling): the
    `rnn_input_pool` of ModelConfig, between the CNN and the recurrent cell."""

    def __init__(self, pool_size=1, **kwargs):
        super().__init__(**kwargs)
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}.")
        self.pool_size = int(pool_size)

    def call(self, clips):
        return pool_planes(clips, self.pool_size)

    def compute_output_shape(self, input_shape):
        b, t, h, w, c = input_shape
        p = self.pool_size
        return tf.TensorShape([b, t, None if h is None else h // p, None if w is None else w // p, c])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


@_register
class SensorReadout(tf.keras.layers.Layer):
    """What leaves the sensor: the readout, optionally max-pooled on the chip to cut bandwidth
    (pool 1 keeps 64x64; 64 reads one value per plane), with Gaussian readout noise (the ADC and
    analog path) in training.
    """

    def __init__(self, pool_size=1, noise_stddev=0.0, noise_at_inference=False, **kwargs):
        super().__init__(**kwargs)
        if pool_size < 1:
            raise ValueError(f"readout pool_size must be >= 1, got {pool_size}.")
        self.pool_size = int(pool_size)
        self.noise_stddev = check_stddev("readout noise_stddev", noise_stddev)
        self.noise_at_inference = bool(noise_at_inference)

    def build(self, input_shape):
        _, _, h, w, _ = input_shape
        if (h and self.pool_size > h) or (w and self.pool_size > w):
            raise ValueError(f"readout pool_size {self.pool_size} is larger than the readout plane {h}x{w}.")
        super().build(input_shape)

    def call(self, readouts, training=None):
        return add_analog_noise(pool_planes(readouts, self.pool_size), self.noise_stddev, bool(training), self.noise_at_inference)

    def compute_output_shape(self, input_shape):
        b, n, h, w, c = input_shape
        p = self.pool_size
        return tf.TensorShape([b, n, None if h is None else h // p, None if w is None else w // p, c])

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "noise_stddev": self.noise_stddev,
            "noise_at_inference": self.noise_at_inference,
        }
