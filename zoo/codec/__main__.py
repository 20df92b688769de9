"""`python -m zoo.codec`: compress images with a pretrained model into one file, and back.

    python -m zoo.codec compress --model pixelcnnpp-mnist digits/ -o digits.zooc
    python -m zoo.codec decompress digits.zooc -o decoded/

Inputs are folders of PNGs (read in file-name order), PNG files, or `.npy` uint8 batches
`[n, H, W, C]`, concatenated in the order given. A PNG's pixel values are the model's
levels as stored (0..255 for MNIST, 0..16 for digits, a one-bit PNG 0/1 for two levels),
grey ("L" or "1") for one channel, "RGB" for three. Decompressing writes 00000.png, ...
(or one `.npy` when -o ends in .npy), and labels.npy beside them for a class-conditional
model. Bad input is a one-line error and exit status 2.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

MODES = {1: ("L", "1"), 3: ("RGB",)}  # PNG modes read for 1 and 3 channels


def _read_png(path, channels):
    from PIL import Image
    with Image.open(path) as image:
        if image.format != "PNG" or image.mode not in MODES.get(channels, ()):
            raise ValueError(f"{path}: expected a {'grey (mode L or 1)' if channels == 1 else 'RGB'} PNG, "
                             f"got {image.format} mode {image.mode}.")
        array = np.asarray(image)
    array = array.astype(np.uint8)  # a one-bit PNG reads as bools: 0/1
    return array[..., None] if channels == 1 else array


def read_inputs(paths, channels):
    """uint8 images `[n, H, W, C]` from PNG folders, PNG files and .npy batches, in order."""
    batches = []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(path.glob("*.png"))
            if not files:
                raise ValueError(f"{path}: a folder without .png files.")
            batches.append(np.stack([_read_png(f, channels) for f in files]))
        elif path.suffix == ".npy" and path.is_file():
            array = np.load(path, allow_pickle=False)
            if array.dtype != np.uint8 or array.ndim != 4:
                raise ValueError(f"{path}: expected a uint8 batch [n, H, W, C], got {array.dtype} {array.shape}.")
            batches.append(array)
        elif path.suffix == ".png" and path.is_file():
            batches.append(_read_png(path, channels)[None])
        else:
            raise ValueError(f"{path}: expected a folder of PNGs, a .png or a .npy file.")
    shapes = {b.shape[1:] for b in batches}
    if len(shapes) > 1:
        raise ValueError(f"The inputs hold images of different shapes: {sorted(shapes)}.")
    return np.concatenate(batches)


def write_outputs(images, labels, num_levels, out):
    """PNGs 00000.png, ... in folder `out` (or one .npy file), and labels.npy."""
    from zoo.codec.classical import encode_image
    out = Path(out)
    if out.suffix == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, images)
        if labels is not None:
            np.save(out.with_name(out.stem + "-labels.npy"), labels)
        return
    if out.exists() and (not out.is_dir() or any(out.glob("*.png"))):
        raise ValueError(f"{out}: expected a new or PNG-free folder, so decoded images do not mix with others.")
    out.mkdir(parents=True, exist_ok=True)
    digits = max(5, len(str(len(images) - 1)))
    for i, image in enumerate(images):
        (out / f"{i:0{digits}d}.png").write_bytes(encode_image(image, num_levels, "png"))
    if labels is not None:
        np.save(out / "labels.npy", labels)


def compress(args):
    import zoo.codec
    from zoo import hub
    e = hub.entry(args.model)
    images = read_inputs(args.inputs, e["config"]["image_shape"][-1])
    labels = None
    if args.labels:
        labels = np.load(args.labels, allow_pickle=False)
        if labels.dtype.kind not in "ui":
            raise ValueError(f"{args.labels}: expected integer labels [n], got {labels.dtype}.")
    data = zoo.codec.compress(args.model, images, labels, batch_size=args.batch_size)
    Path(args.output).write_bytes(data)
    dims = images[0].size * len(images)
    print(f"{len(images)} images -> {args.output}: {len(data)} bytes, {8 * len(data) / dims:.4f} bits/dim")


def decompress(args):
    import zoo.codec
    data = Path(args.input).read_bytes()
    header = zoo.codec.container.unpack(data)[0]
    decoded = zoo.codec.decompress(data)
    images, labels = decoded if isinstance(decoded, tuple) else (decoded, None)
    write_outputs(images, labels, header["num_levels"], args.output)
    print(f"{args.input} -> {len(images)} images in {args.output}")


class _Parser(argparse.ArgumentParser):
    """Lists the pretrained models that compress in its help (only then: it builds each)."""

    def format_help(self):
        import zoo.codec
        names = zoo.codec.compressing_models()
        self.epilog = "Pretrained models that compress:\n" + "\n".join(f"  {name}" for name in names)
        return super().format_help()


def parser():
    p = _Parser(prog="python -m zoo.codec", description="Lossless compression of images with a pretrained model.",
                formatter_class=argparse.RawDescriptionHelpFormatter)  # the epilog's list, a name a line
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compress", help="images -> one file")
    c.add_argument("--model", required=True, help="a pretrained model that compresses (see python -m zoo.codec -h)")
    c.add_argument("inputs", nargs="+", help="folders of PNGs, .png files or .npy uint8 batches [n, H, W, C]")
    c.add_argument("-o", "--output", required=True, help="the compressed file")
    c.add_argument("--labels", help=".npy of int labels [n] (class-conditional models)")
    c.add_argument("--batch-size", type=int, default=None, help="images per network pass (default 250)")
    d = sub.add_parser("decompress", help="one file -> PNGs (or a .npy)")
    d.add_argument("input", help="a file written by compress")
    d.add_argument("-o", "--output", required=True, help="a folder for the PNGs, or a .npy file")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        (compress if args.command == "compress" else decompress)(args)
    except (ValueError, OSError) as error:  # bad input: one line, status 2
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
