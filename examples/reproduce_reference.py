"""Reproduce the PixelRNN authors' own simulator, stage by stage, from their PyTorch checkpoint.

Shows: importing the authors' released Tulips1 model (`lips_no_noise.pt`, no torch needed), running
it as a pixelrnn-tf Keras model on the binarised frames of the 10 test clips, and comparing every
intermediate stage their simulator dumped (`tulips1_test_intermediates.npz`) pixel by pixel.

    python examples/reproduce_reference.py ../shared/reference/lips_no_noise.pt \
        ../shared/reference/tulips1_test_intermediates.npz

Runs in under a minute on a laptop CPU.
"""

import argparse

import numpy as np

from pixelrnn_tf import torch_import

# The dump stores 8-bit image codes: +-1 maps as 255 (v + 1) / 2, real-valued maps as
# clip(trunc(10 v + 127), 0, 255), so real values survive only inside [-12.7, 12.8].


def decode_sign(codes):
    return np.where(codes >= 128, 1.0, -1.0)


def decode_real(codes):
    return np.round((codes.astype(np.float64) - 127.0) / 10.0)


def as_written(values):
    return np.round(np.clip(values, -12.7, 12.8))


def tile(maps):
    """16 channels (..., h, w, 16) -> one (..., 4h, 4w) image: channel k at tile (k mod 4, k div 4)."""
    h, w = maps.shape[-3:-1]
    out = np.zeros(maps.shape[:-3] + (4 * h, 4 * w))
    for k in range(16):
        out[..., (k % 4) * h : (k % 4 + 1) * h, (k // 4) * w : (k // 4 + 1) * w] = maps[..., k]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="the authors' lips_no_noise.pt")
    parser.add_argument("intermediates", help="the authors' tulips1_test_intermediates.npz")
    args = parser.parse_args()

    # 1. Import: the zip checkpoint is read with numpy; its pickle may name tensors only.
    model = torch_import.load_torch_checkpoint(args.checkpoint)
    dump = np.load(args.intermediates)

    # 2. Run: the Keras model on the exact CNN input of every frame, every stage traced.
    clips = decode_sign(dump["0_binarized_x"])  # (10 clips, 16 frames, 64, 64)
    s = torch_import.trace_reference_stages(model, clips)

    # 3. Compare, after decoding the authors' 8-bit images.
    quads = np.concatenate([np.concatenate([s.fi, s.fh], -1), np.concatenate([s.oi, s.oh], -1)], -2)
    comparisons = [
        ("CNN convolution", decode_real(dump["1_conv1"]), as_written(tile(s.conv))),
        ("ReLU + max-pool", decode_real(dump["2_conv1post"]), as_written(tile(s.pooled))),
        ("CNN threshold (RNN input)", decode_sign(dump["3_thresholded_quantized"]), s.thresholded),
        ("hidden state h", decode_sign(dump["4_hidden"]), s.hidden),
        ("w_f*x, u_f*h, w_o*x, u_o*h", decode_real(dump["5_fi_fh_oi_oh"]), as_written(quads)),
        ("forget gate f", decode_sign(dump["7_forget_gate_x"]), s.forget_gate),
        ("next hidden state", decode_sign(dump["6_ft_ot"][:, :, :64]), s.next_hidden),
        ("output o", decode_real(dump["6_ft_ot"][:, :, 64:]), as_written(s.output)),
    ]
    print(f"{'stage':<30}{'pixels':>12}{'different':>11}")
    for name, theirs, ours in comparisons:
        print(f"{name:<30}{theirs.size:>12,}{int(np.sum(theirs != ours)):>11,}")

    predictions = np.argmax(s.logits, axis=-1)
    labels = dump["labels"]
    print("\nclip        label  predicted")
    for clip, label, predicted in zip(dump["clip_names"], labels, predictions):
        print(f"{clip:<12}{label:>5}  {predicted:>9}")
    print(f"accuracy {np.sum(predictions == labels)}/{len(labels)} (the authors report 9/10)")


if __name__ == "__main__":
    main()
