"""The in-pixel binary CNN encoder (Bose et al. 2019/2020, PixelRNN section 3.1) and the tiling of
its 16 feature maps into one image.

Per frame and per layer l:
    b   = psi(x - theta_in)            input binarisation (layer 1 only; theta_in optional, learned)
    c   = W_l * b                      16 kernels 5x5, zero padding 2, no bias (cross-correlation)
    p   = maxpool_4x4(relu(c))         (batchnorm=True: relu(BN(c)), Liu et al. 2022)
    q   = psi(p + n - theta_l)         n ~ N(0, sigma_cnn^2) in training: analog noise; with
                                       batchnorm, theta_l is learned per channel (adaptive)
    out = tile(q)                      16 maps of 16x16 -> one 64x64 image
psi is sign in the binary model and tanh in the full-precision variant. A second layer convolves
the tiled 64x64 image as one channel. On the sensor, BatchNorm and the threshold fold into one
whole-count level per channel and a sign flip of the channel's kernel (`fold_batchnorm`). On SCAMP-5 each of the 16 processing elements of a 4x4
macropixel computes one channel, so the tiling is where the data already lies on the chip.

The encoder is a Keras Model of larq layers (one InPixelConv2D and one LearnedScalar threshold
per layer), so that larq's summary counts its 1-bit kernels and binary MACs (pixelrnn_tf.layers).
"""

import math

import numpy as np

from pixelrnn_tf import quantizers
from pixelrnn_tf._keras import tf
from pixelrnn_tf.layers import FLOAT_BITS, InPixelConv2D, LearnedScalar, LegacyModelError, LEGACY_HELP
from pixelrnn_tf.noise import add_analog_noise, check_stddev
from pixelrnn_tf.shapes import check_clip_shape


def tile_channels(maps, grid):
    """(B, h, w, grid*grid) -> (B, grid*h, grid*w, 1), column-major: channel k fills tile row
    k mod grid, tile column k div grid, i.e. pixel (Y, X) = maps[Y mod h, X mod w,
    grid*(X div w) + (Y div h)]."""
    shape = tf.shape(maps)
    b, h, w = shape[0], shape[1], shape[2]
    # Split channel k = grid * tile_col + tile_row.
    x = tf.reshape(maps, [b, h, w, grid, grid])  # (B, y, x, tile_col, tile_row)
    x = tf.transpose(x, [0, 4, 1, 3, 2])  # (B, tile_row, y, tile_col, x)
    return tf.reshape(x, [b, grid * h, grid * w, 1])


def untile_channels(image, grid):
    """Inverse of tile_channels: (B, grid*h, grid*w, 1) -> (B, h, w, grid*grid)."""
    shape = tf.shape(image)
    b, hh, ww = shape[0], shape[1], shape[2]
    h, w = hh // grid, ww // grid
    x = tf.reshape(image, [b, grid, h, grid, w])  # (B, tile_row, y, tile_col, x)
    x = tf.transpose(x, [0, 2, 4, 3, 1])  # (B, y, x, tile_col, tile_row)
    return tf.reshape(x, [b, h, w, grid * grid])


@tf.keras.utils.register_keras_serializable(package="pixelrnn_tf")
class InPixelCNN(tf.keras.Model):
    """The binary CNN that runs on the sensor, applied to every frame of a clip.

    Input clips (batch, T, H, W, 1); output (batch, T, H, W, 1): per frame, the tiled binary
    feature image. With `binary=False` the kernels are real-valued, the input is not binarised
    and psi = tanh (the full-precision baseline of the paper).

    Args:
        num_layers: 1 or 2 CNN layers.
        filters: kernels per layer; must equal pool_size**2 so the pooled maps tile back to H x W.
        kernel_size: 5 on SCAMP-5.
        pool_size: max-pool window (4: one value per 4x4 macropixel).
        binary: binary weights and activations (True) or full precision.
        kernel_quantizer, activation_quantizer: quantizer names or instances (binary only).
        zero_point: learn a zero-point zeta per kernel tensor, w = q(w~ - zeta).
        learned_input_threshold: binarise the input at a learned threshold instead of 0.
        threshold_init: initial value of each layer's threshold theta_l (model units: counts).
        noise_stddev: std of the Gaussian noise added before each threshold.
        noise_at_inference: keep that noise on outside training.
        batchnorm: BatchNorm after each convolution (before ReLU and pooling) and a learned
            threshold per channel (adaptive thresholds, Liu et al. 2022).
    """

    def __init__(
        self,
        num_layers=1,
        filters=16,
        kernel_size=5,
        pool_size=4,
        binary=True,
        kernel_quantizer="tanh_sign",
        activation_quantizer="tanh_sign",
        zero_point=False,
        learned_input_threshold=False,
        threshold_init=0.5,
        noise_stddev=0.0,
        noise_at_inference=False,
        batchnorm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_layers not in (1, 2):
            raise ValueError(f"InPixelCNN: num_layers must be 1 or 2, got {num_layers}.")
        if filters != pool_size**2:
            raise ValueError(
                f"InPixelCNN: filters ({filters}) must equal pool_size**2 ({pool_size**2}) so that "
                "the pooled maps tile back into one image of the input size."
            )
        self.num_layers = int(num_layers)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.pool_size = int(pool_size)
        self.grid = int(math.isqrt(filters))
        self.binary = bool(binary)
        kernel_q = quantizers.get(kernel_quantizer) if binary else None
        # larq reads a model's input precision from its first layer: the convolutions come first
        self.convs = [
            InPixelConv2D(
                self.filters, self.kernel_size, kernel_q, input_precision=1 if binary else FLOAT_BITS, name=f"conv_{l + 1}"
            )
            for l in range(self.num_layers)
        ]
        self.batchnorm = bool(batchnorm)
        self.batchnorm_layers = (
            [tf.keras.layers.BatchNormalization(name=f"batchnorm_{l + 1}") for l in range(self.num_layers)] if batchnorm else []
        )
        per_channel = (self.filters,) if batchnorm else ()
        self.threshold_layers = [
            LearnedScalar(threshold_init, shape=per_channel, name=f"threshold_{l + 1}") for l in range(self.num_layers)
        ]
        self.zero_point_layers = (
            [LearnedScalar(0.0, name=f"zero_point_{l + 1}") for l in range(self.num_layers)] if binary and zero_point else []
        )
        self.input_threshold_layer = LearnedScalar(0.0, name="input_threshold") if learned_input_threshold else None
        self.kernel_quantizer = kernel_q
        self.activation_quantizer = quantizers.get(activation_quantizer) if binary else None
        self.zero_point = bool(zero_point)
        self.learned_input_threshold = bool(learned_input_threshold)
        self.threshold_init = float(threshold_init)
        self.noise_stddev = check_stddev("InPixelCNN noise_stddev", noise_stddev)
        self.noise_at_inference = bool(noise_at_inference)

    def build(self, input_shape):
        _, _, height, width, channels = input_shape
        if height is not None and height % self.pool_size:
            raise ValueError(f"InPixelCNN: frame height {height} is not a multiple of pool_size {self.pool_size}.")
        in_channels = channels or 1
        for conv in self.convs:
            if not conv.built:
                conv.build((None, height, width, in_channels))
            in_channels = 1  # the next layer convolves the tiled image as one channel
        for norm in self.batchnorm_layers:
            if not norm.built:
                norm.build((None, height, width, self.filters))
        tf.keras.layers.Layer.build(self, input_shape)  # Model.build would trace call() once more

    # The variables by the names the rest of the library uses.
    @property
    def kernels(self):
        """The latent (real-valued) kernel of each layer, (k, k, in, filters)."""
        return [conv.latent_kernel for conv in self.convs]

    @property
    def thresholds(self):
        return [layer.value for layer in self.threshold_layers]

    @property
    def zero_points(self):
        return [layer.value for layer in self.zero_point_layers] or [None] * self.num_layers

    @property
    def input_threshold(self):
        return None if self.input_threshold_layer is None else self.input_threshold_layer.value

    def binary_kernel(self, layer):
        """The kernel of `layer` (0-based) as the sensor uses it: +-1 (binary) or real."""
        return self.convs[layer].forward_kernel(self.zero_points[layer])

    def _psi(self, x):
        return self.activation_quantizer(x) if self.binary else tf.tanh(x)

    def frame_stages(self, frames, training=False):
        """Every intermediate of the CNN for a batch of frames (N, H, W, 1), as a list with one
        dict per layer: input (b), conv (c), pooled (p), thresholded (q, untiled) and tiled."""
        stages = []
        x = frames
        for layer in range(self.num_layers):
            if layer == 0 and self.binary:
                x = self._psi(x - self.input_threshold if self.input_threshold is not None else x)
            conv = tf.nn.conv2d(x, self.binary_kernel(layer), strides=1, padding="SAME")
            normed = self.batchnorm_layers[layer](conv, training=training) if self.batchnorm else conv
            # max-pool, then ReLU: the same values (ReLU is monotone) on 16x fewer of them
            pooled = tf.nn.relu(tf.nn.max_pool2d(normed, self.pool_size, self.pool_size, "VALID"))
            noisy = add_analog_noise(pooled, self.noise_stddev, training, self.noise_at_inference)
            thresholded = self._psi(noisy - self.thresholds[layer])
            tiled = tile_channels(thresholded, self.grid)
            stages.append(dict(input=x, conv=conv, pooled=pooled, thresholded=thresholded, tiled=tiled))
            x = tiled
        return stages

    def call(self, clips, training=None):
        check_clip_shape(clips.shape, clips.shape[2], clips.shape[3], 1, 1)
        shape = tf.shape(clips)
        frames = tf.reshape(clips, tf.concat([[-1], shape[2:]], axis=0))
        tiled = self.frame_stages(frames, training=bool(training))[-1]["tiled"]
        return tf.reshape(tiled, shape)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)

    def load_own_variables(self, store):
        if len(store.keys()):  # pixelrnn-tf 0.1 kept the kernels and thresholds here
            raise LegacyModelError(f"This file {LEGACY_HELP}")

    def legacy_variables(self):
        """The variables in the order pixelrnn-tf 0.1 stored them (pixelrnn_tf.legacy)."""
        order = []
        for layer in range(self.num_layers):
            order.append(self.kernels[layer])
            if self.zero_point_layers:
                order.append(self.zero_points[layer])
            order.append(self.thresholds[layer])
        return order + ([self.input_threshold] if self.input_threshold is not None else [])

    # Accounting (see pixelrnn_tf.accounting).
    def in_pixel_parameters(self):
        """Kernel entries plus one threshold per layer, or per channel with BatchNorm (plus the
        input threshold if learned)."""
        count = 0
        for conv in self.convs:
            in_channels = conv.kernel.shape[2] if conv.built else 1
            count += self.kernel_size**2 * in_channels * self.filters
        # BatchNorm on the sensor is its folded form: one level per channel, the thresholds' count
        thresholds = self.num_layers * (self.filters if self.batchnorm else 1)
        return count + thresholds + (1 if self.learned_input_threshold else 0)

    def transient_bits_per_pixel(self, analog_bits):
        """Per 4x4 macropixel: the 16 conv outputs held before pooling, one per PE."""
        return self.filters * (analog_bits if self.binary else FLOAT_BITS)

    def get_config(self):
        return {
            **tf.keras.layers.Layer.get_config(self),  # Model.get_config is empty for subclasses
            "num_layers": self.num_layers,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "pool_size": self.pool_size,
            "binary": self.binary,
            "kernel_quantizer": quantizers.serialize(self.kernel_quantizer),
            "activation_quantizer": quantizers.serialize(self.activation_quantizer),
            "zero_point": self.zero_point,
            "learned_input_threshold": self.learned_input_threshold,
            "threshold_init": self.threshold_init,
            "noise_stddev": self.noise_stddev,
            "noise_at_inference": self.noise_at_inference,
            "batchnorm": self.batchnorm,
        }


def fold_batchnorm(encoder, layer, counts=None):
    """The sensor form of a layer with BatchNorm and per-channel thresholds: (signs, first) with
    signs[k] = +-1 and first[k] the first whole count c' of the channel's kernel times signs[k]
    that passes (-inf: every count passes, +inf: none does), so that the model's

        psi(maxpool(relu(BN(c))) - theta_k) = +1  exactly when  max over the block of signs[k] c >= first[k].

    The passing counts are found by running the layer's own BatchNorm, ReLU and threshold on every
    count a binary kernel can sum (-k^2 .. k^2 for one input plane), the ops Keras runs on the
    convolution's output, so the fold is exact, with no algebra in float. A negative BN scale makes
    the passing counts the low ones: the channel's kernel flips sign (c' = -c)."""
    if not encoder.batchnorm:
        raise ValueError("fold_batchnorm: this encoder has no BatchNorm (batchnorm=False).")
    if counts is None:
        taps = encoder.kernel_size**2 * (encoder.convs[layer].kernel.shape[2] or 1)
        counts = np.arange(-taps, taps + 1, dtype=np.float32)
    grid = np.broadcast_to(counts[:, None], (counts.size, encoder.filters)).reshape(1, 1, counts.size, encoder.filters)
    normed = encoder.batchnorm_layers[layer](tf.constant(grid), training=False)
    passes = (tf.nn.relu(normed) - encoder.thresholds[layer] >= 0).numpy()[0, 0]  # (counts, filters)
    signs, first = np.ones(encoder.filters, np.float32), np.zeros(encoder.filters, np.float64)
    for k in range(encoder.filters):
        passing = counts[passes[:, k]]
        if passing.size == counts.size:
            first[k] = -np.inf
        elif passing.size == 0:
            first[k] = np.inf
        elif np.array_equal(passes[:, k], counts >= passing.min()):
            first[k] = passing.min()
        elif np.array_equal(passes[:, k], counts <= passing.max()):
            signs[k], first[k] = -1.0, -passing.max()
        else:  # pragma: no cover - BatchNorm is monotone in its input
            raise ValueError(f"fold_batchnorm: channel {k} of layer {layer + 1} passes counts that are not one interval.")
    return signs, first
