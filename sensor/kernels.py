"""Fused analog writes: one compiled kernel per macro, with a counter-based random generator.

An analog macro on the array reads its sources, drifts, picks up fixed-pattern and temporal
noise, saturates, and is written where FLAG is set. Emulated as separate TensorFlow ops that is
about 16 passes over every plane; the passes, not the arithmetic, bound the emulator. Here the
whole write is one function compiled with XLA, which fuses it into a single loop over the pixels.

Random numbers are made inside that loop. `tf.random.stateless_normal` cannot be fused (under XLA
on CPU it runs as a slow sequential loop), so each pixel hashes its index with the write's key
(one round of the `lowbias32` integer hash, C. Wellons 2018) and turns the 32 bits into a
standard normal: three 10-bit fields sum to an Irwin-Hall(3) variable, the last 2 bits spread each
of its values over 4 sub-steps, and an odd polynomial of degree 13 maps the standardised sum onto
the normal quantile of its own distribution function (`_NORMALISE`, fitted once by least squares
on the exact distribution). The draws' distribution function is within 2.4e-4 of the normal's
everywhere and they reach 4.8 standard deviations; their variance is 1. It costs a few
multiply-adds per pixel and stays vectorised inside the fused loop, where a Box-Muller transform
cost 7x the hash and a table lookup of the normal quantiles broke vectorisation. (The Irwin-Hall
sum of 4 bytes used before, unmapped, had tails that stopped at 3.46 standard deviations.)

Writes to the same register under disjoint FLAGs (a tap's add where input and weight agree,
subtract where they differ, and the calibrated program's "+0" elsewhere) run as one kernel with
one draw per pixel: every pixel takes part in at most one of them, so this is the same
computation as running them one after the other. When they cost the same bus operations, the
kernel selects each pixel's value first and applies drift and noise once.

Digital planes are bit-packed over the batch: bit b % 32 of word b // 32 of a pixel is that
pixel's bit on sensor b, so a plane is (ceil(B / 32), H, W) int32 and one bitwise op or shift
serves 32 sensors (at batch 16, 10x faster shifts and 2x faster logic than bool planes). A
constant plane (the same on every sensor) is one word of all ones or zeros, (1, H, W). The
kernels unpack FLAG bits inside the fused loop.
"""

import numpy as np

from pixelrnn_tf._keras import tf

# Irwin-Hall(3) of 10-bit fields plus a 2-bit sub-step: mean and standard deviation of the sum,
# and the coefficients c_j of z = u * sum_j c_j u^(2j) (u the standardised sum), fitted by
# least squares (weighted by probability) to the normal quantiles of the sum's distribution
_IRWIN_HALL_MEAN, _IRWIN_HALL_STD = 1534.5, 512.0
_NORMALISE = (9.39264811e-01, 4.15679050e-02, -1.76824229e-02, 3.52897221e-03, 1.44885116e-04, -9.40716755e-05, 7.09037727e-06)
# A value's ops: how its sources combine (the macro's result before noise).
_COMBINE = {
    "bus": lambda xs, c: -tf.add_n(xs) if len(xs) > 1 else -xs[0],
    "mov": lambda xs, c: xs[0],
    "add": lambda xs, c: xs[0] + xs[1],
    "sub": lambda xs, c: xs[0] - xs[1],
    "neg": lambda xs, c: -xs[0],
    "abs": lambda xs, c: tf.abs(xs[0]),
    "div2": lambda xs, c: xs[0] * 0.5,
    "in": lambda xs, c: c,
    "scale": lambda xs, c: xs[0] * c,
}
FUSABLE = frozenset(_COMBINE) - {"scale"}
# scalars per write: [constant, gain, offset, fixed-pattern scale, sigma_0, sigma_1, decay factors...]
SCALARS = 6


def _u32(value):
    return tf.constant(value, tf.uint32)


def _mix32(x):
    """lowbias32: a 32-bit integer hash with full avalanche."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(16)))
    x = x * _u32(0x7FEB352D)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(15)))
    x = x * _u32(0x846CA68B)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(16)))


def write_key(seed, counter, step):
    """The uint32 key of one write: hashed (seed, frame counter, step); a graph op on scalars."""
    counter = tf.cast(counter, tf.int64) * 1_000_003 + step
    low = tf.cast(tf.bitwise.bitwise_and(counter, 0xFFFFFFFF), tf.uint32)
    high = tf.cast(tf.bitwise.right_shift(counter, 32), tf.uint32)
    # the seed is hashed on its own first: XOR-ing it into the counter would give seed s at step
    # t the draws of seed s ^ 1 at step t ^ 1
    seed_key = _mix32(_u32(int(seed) & 0xFFFFFFFF) ^ _u32(0x5BD1E995))
    return _mix32(_mix32(low + seed_key) + high * _u32(0x9E3779B9))


def hash_normal(shape, key):
    """Standard normal values of `shape` (module docstring), a pure function of the element index
    and the uint32 `key`."""
    index = tf.bitcast(tf.reshape(tf.range(tf.reduce_prod(shape), dtype=tf.int32), shape), tf.uint32)
    # one round of the hash: the key is already a full-avalanche hash, and multiplying the index
    # by it (made odd) before adding it means two writes' fields are never shifted copies of each
    # other (as they would be with index ^ key for keys that differ only in low bits)
    bits = _mix32(index * tf.bitwise.bitwise_or(key, _u32(1)) + key)
    field = _u32(1023)
    total = tf.add_n([tf.cast(tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, _u32(s)), field), tf.float32) for s in (0, 10, 20)])
    total += tf.cast(tf.bitwise.right_shift(bits, _u32(30)), tf.float32) * 0.25 - 0.375
    u = (total - _IRWIN_HALL_MEAN) * (1.0 / _IRWIN_HALL_STD)
    u2 = u * u
    poly = _NORMALISE[-1]
    for c in reversed(_NORMALISE[:-1]):
        poly = poly * u2 + c
    return u * poly


WORD = 32


def words(batch):
    """Packed words per pixel for `batch` sensors (a tensor or int)."""
    return (batch + WORD - 1) // WORD


def pack(bits):
    """(B, H, W) bool -> (ceil(B / 32), H, W) int32, sensor b at bit b % 32 of word b // 32."""
    batch = tf.shape(bits)[0]
    padded = tf.pad(tf.cast(bits, tf.int32), [[0, (-batch) % WORD], [0, 0], [0, 0]])
    padded = tf.reshape(padded, tf.concat([[-1, WORD], tf.shape(bits)[1:]], 0))
    # distinct powers of two: the sum is the OR (bit 31 wraps to the sign, as it should)
    return tf.reduce_sum(tf.bitwise.left_shift(padded, tf.reshape(tf.range(WORD), (1, WORD, 1, 1))), axis=1)


def unpack(packed, batch):
    """(P, H, W) int32 -> (batch, H, W) bool; a (1, H, W) constant word serves every sensor."""
    sensors = tf.range(batch)
    word = tf.gather(packed, tf.minimum(sensors // WORD, tf.shape(packed)[0] - 1), axis=0)
    bit = tf.bitwise.right_shift(word, tf.reshape(sensors % WORD, (-1, 1, 1)))
    return tf.not_equal(tf.bitwise.bitwise_and(bit, 1), 0)


def constant_word(plane):
    """A numpy (H, W) bool plane as a packed constant (1, H, W) int32: -1 (all bits) or 0."""
    return np.where(np.asarray(plane, bool), -1, 0).astype(np.int32)[None]


def evaluate_bits(expression, leaves):
    """A bitwise expression over packed planes: ("leaf", i) | ("not", e) | ("and"|"or", e, e)."""
    op = expression[0]
    if op == "leaf":
        return leaves[expression[1]]
    if op == "not":
        return tf.bitwise.invert(evaluate_bits(expression[1], leaves))
    a, b = evaluate_bits(expression[1], leaves), evaluate_bits(expression[2], leaves)
    return tf.bitwise.bitwise_and(a, b) if op == "and" else tf.bitwise.bitwise_or(a, b)


class WriteKernels:
    """A cache of compiled kernels, one per structure.

    A write's structure is a tuple with one (op, number of sources, FLAG expression) per fused
    write (the expression None when the write is not gated), together with the noise switches
    (drift gain, constant offset, fixed pattern, random, decay) that are the same for every write
    of one emulator. FLAG expressions are bitwise expressions (evaluate_bits) over packed leaf
    planes: a tap's chain of digital instructions is evaluated inside the write that uses it.
    Everything that changes from write to write (the values of the scalars, the key, the planes,
    the leaves) is an argument, so a program of thousands of writes compiles a handful of kernels."""

    def __init__(self, lo, hi, noise_switches, jit=True):
        self.lo, self.hi = float(lo), float(hi)
        self.switches = noise_switches  # (gain, offset, fixed, random, decay) booleans
        self.jit = jit
        self._cache = {}

    def _compiled(self, key, make):
        if key not in self._cache:
            self._cache[key] = tf.function(make(), jit_compile=self.jit, autograph=False)
        return self._cache[key]

    def __call__(self, writes, old, sources, leaves, scalars, fixed, key, shared=False):
        """writes: ((op, n_sources, FLAG expression or None), ...); old: the destination
        (B, h, w); sources: one tuple of planes per write; leaves: the packed planes the FLAG
        expressions name; scalars: one float32 vector per write (SCALARS + n_sources values);
        fixed: the fixed-pattern plane (h, w) or None; key: uint32. shared: the writes are all
        gated and drift alike (the same scalars but the constant), so each pixel's value is
        selected first and the noise applied once.

        Returns (new plane, clipped writes as int32). The new plane holds each written pixel's
        value before saturation: every reader clips it to the range (which is what the register
        holds), and the clipped writes are counted from it, in a second, light kernel that does
        not recompute the noise (XLA would duplicate the whole write into the count)."""
        structure = tuple(writes)
        kernel = self._compiled((structure, shared), lambda: self._kernel(structure, shared))
        new = kernel(old, tuple(sources), tuple(leaves), tuple(scalars), fixed, key)
        return new, self.count_clipped(new, tuple(w[2] for w in structure), leaves)

    def count_clipped(self, plane, gates, leaves):
        """Pixels of `plane` outside the range where any of the FLAG expressions `gates` is set
        (a None among them: everywhere)."""
        gates = () if any(g is None for g in gates) else tuple(gates)
        lo, hi = self.lo, self.hi

        def make():
            def count(plane, leaves):
                outside = tf.logical_or(plane < lo, plane > hi)
                if gates:
                    gate = evaluate_bits(gates[0], leaves)
                    for other in gates[1:]:
                        gate = tf.bitwise.bitwise_or(gate, evaluate_bits(other, leaves))
                    outside = tf.logical_and(outside, unpack(gate, tf.shape(plane)[0]))
                # summed over the batch here (a contiguous, vectorised reduction), over the
                # pixels outside: XLA's CPU reduction to a scalar is several times slower
                return tf.reduce_sum(tf.cast(outside, tf.float32), axis=0)

            return count

        counts = self._compiled(("count", gates), make)(plane, tuple(leaves) if gates else ())
        return tf.cast(tf.reduce_sum(counts), tf.int32)

    def bits(self, expression, leaves):
        """Evaluate a bitwise expression over packed planes (a chain of digital instructions)."""
        return self._compiled(("bits", expression), lambda: lambda leaves: evaluate_bits(expression, leaves))(tuple(leaves))

    def clip(self, plane):
        return tf.clip_by_value(plane, self.lo, self.hi)

    def sign_bits(self, plane, stddev=0.0, key=None):
        """The comparator over a batch of analog planes, packed: bit = plane + noise >= 0, the
        noise N(0, stddev^2) fresh per pixel (drawn with `key`)."""
        if not stddev:
            return self._compiled("sign", lambda: lambda x: pack(x >= 0))(plane)
        noisy = lambda x, s, k: pack(x + s * hash_normal(tf.shape(x), k) >= 0)  # noqa: E731
        return self._compiled("noisy sign", lambda: noisy)(plane, tf.constant(stddev, tf.float32), key)

    def _kernel(self, structure, shared):
        gain_on, offset_on, fixed_on, random_on, decay_on = self.switches
        lo, hi = self.lo, self.hi

        def combine(op, xs, s, old):
            if op != "scale":  # register reads: a register holds its value clipped
                xs = [tf.clip_by_value(x, lo, hi) for x in xs]
            if decay_on:
                xs = [x * s[SCALARS + i] for i, x in enumerate(xs)]
            return _COMBINE[op](list(xs), s[0]) + tf.zeros_like(old)

        def noisy(value, s, fixed, draw):
            if gain_on:
                value = value * s[1]
            if offset_on:
                value = value + s[2]
            if fixed_on:
                value = value + s[3] * fixed
            if random_on:
                value = value + (s[4] + s[5] * tf.abs(value)) * draw
            return value

        def kernel(old, sources, leaves, scalars, fixed, key):
            draw = hash_normal(tf.shape(old), key) if random_on else None
            batch = tf.shape(old)[0]
            writes = list(zip(structure, sources, scalars))
            if shared:
                value, written = None, None
                for (op, count, gate), xs, s in reversed(writes):
                    selected = unpack(evaluate_bits(gate, leaves), batch)
                    v = combine(op, xs, s, old)
                    value = v if value is None else tf.where(selected, v, value)
                    written = selected if written is None else tf.logical_or(written, selected)
                return tf.where(written, noisy(value, scalars[0], fixed, draw), old)
            new = old
            # the last write is applied first so that the first one ends on top; with disjoint
            # flags the order does not matter
            for (op, count, gate), xs, s in reversed(writes):
                value = noisy(combine(op, xs, s, old), s, fixed, draw)
                new = value if gate is None else tf.where(unpack(evaluate_bits(gate, leaves), batch), value, new)
            return new

        return kernel
