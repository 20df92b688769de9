"""The zoo.codec stream: a header naming what decodes it, the labels, the coder's
payload, and checksums that make every failure a one-line ValueError.

Layout (a varint is unsigned LEB128: 7 bits a byte, low first; a string is a one-byte
length and its UTF-8 bytes; a digest is the first DIGEST_BYTES of a sha256):

    b"ZOOC"              magic
    u8                   format version (VERSION)
    u8                   the codec: its index in CODECS (each coder's NAME)
    string               model (its hub name)
    digest               weights_digest: of the model's weight values (`weights_digest`)
    7 varints            H, W, C, num_levels, count, batch_size, bytes per label (0: none)
    digest               images_digest: of the images and labels coded (`images_digest`)
    varint               payload_length
    count * k bytes      labels of a class-conditional model, little-endian (k: 1, 2 or 4)
    payload_length bytes the coder's payload (`zoo.codec.range_coding`, `zoo.codec.bits_back`)
    digest               of everything before it

about 30 bytes and the model's name besides the labels and the payload.

What each check catches:
  * magic and version: not a stream, or one of a format this zoo does not read;
  * the trailing digest: any truncation or changed byte of the stream (header, labels
    or payload), before a model is loaded or a value decoded;
  * weights_digest: decoding with other weights than the encoder's;
  * images_digest: anything else that makes the decoder's probabilities differ from the
    encoder's (a machine that rounds differently): `check_decoded` refuses decoded
    images that do not hash to it, so a stream never decodes to wrong images.
Digests are 32 bits, as gzip's and PNG's CRC-32: an accidental mismatch passes with
probability 2^-32. They guard against accidents (corruption, other weights, other
arithmetic), not forgery; on a digits stream of a few kilobytes each digest byte is
about 0.02% of the size.
"""

import hashlib

import numpy as np

MAGIC = b"ZOOC"
VERSION = 4  # 1: 8-byte digests, the codec's name; 2: bits-back on equal-prior-mass buckets;
# 3: bits-back payloads with all their initial words
DIGEST_BYTES = 4
CODECS = ("range", "bits_back", "ordering_bits_back")  # append only: a stream stores the index
HEADER_FIELDS = ("codec", "model", "weights_digest", "image_shape", "num_levels", "count", "batch_size",
                 "label_bytes", "images_digest", "payload_length")


def _digest(*chunks):
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.digest()[:DIGEST_BYTES]


def weights_digest(model):
    """The digest of a model's float weight values, in `model.weights` order, each as its
    dtype, shape and bytes: the same for the same weights in any process (names are left
    out: Keras numbers them per process; so are integer state variables, dropout counters
    and seed states, which training and sampling advance and likelihoods never read)."""
    chunks = []
    for weight in model.weights:
        value = np.ascontiguousarray(np.asarray(weight.numpy()))
        if value.dtype.kind == "f":
            chunks += [f"{value.dtype.str}{value.shape}".encode(), value.tobytes()]
    return _digest(*chunks)


def label_bytes(num_classes):
    """Bytes per stored label (1, 2 or 4) for labels in [0, num_classes); 0 for an
    unconditional model."""
    if not num_classes:
        return 0
    return next(k for k in (1, 2, 4) if num_classes <= 2 ** (8 * k))


def images_digest(images, labels=None):
    """The digest of uint8 images `[n, H, W, C]` (C order) followed by the labels as
    little-endian int32 (when given)."""
    chunks = [np.ascontiguousarray(images, np.uint8).tobytes()]
    if labels is not None:
        chunks.append(np.ascontiguousarray(labels, "<i4").tobytes())
    return _digest(*chunks)


def varint(value):
    """`value` (an int >= 0) as an unsigned LEB128 varint's bytes."""
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _string(text):
    raw = text.encode()
    if len(raw) > 255:
        raise ValueError(f"Expected a name of at most 255 bytes, got {text!r}.")
    return bytes([len(raw)]) + raw


def pack(header, labels, payload):
    """The stream's bytes. `header`: a dict of `HEADER_FIELDS` but payload_length (set
    here; digests as bytes); `labels`: ints `[count]` or None; `payload`: the coder's bytes."""
    header = {**header, "payload_length": len(payload)}
    if set(header) != set(HEADER_FIELDS):
        raise ValueError(f"Expected header fields {sorted(HEADER_FIELDS)}, got {sorted(header)}.")
    if header["codec"] not in CODECS:
        raise ValueError(f"Expected a codec of {CODECS}, got {header['codec']!r}.")
    k = header["label_bytes"]
    if (labels is None) != (k == 0):
        raise ValueError(f"Expected labels exactly when label_bytes > 0, got label_bytes={k} and labels {labels!r}.")
    numbers = [*header["image_shape"], header["num_levels"], header["count"], header["batch_size"], k]
    body = b"".join([
        MAGIC, bytes([VERSION, CODECS.index(header["codec"])]), _string(header["model"]), header["weights_digest"],
        *map(varint, numbers), header["images_digest"], varint(header["payload_length"]),
        b"" if labels is None else np.asarray(labels).astype(f"<u{k}").tobytes(), bytes(payload)])
    return body + _digest(body)


class _Truncated(Exception):
    """The stream ends inside its header."""


class _Reader:
    """Reads the header's fields from the start of a stream."""

    def __init__(self, data, at):
        self.data, self.at = data, at

    def take(self, size):
        if self.at + size > len(self.data):
            raise _Truncated
        self.at += size
        return self.data[self.at - size:self.at]

    def varint(self):
        value = 0
        for shift in range(0, 70, 7):
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
        raise ValueError("Corrupted zoo.codec stream: a header number runs over 10 bytes.")

    def string(self):
        try:
            return self.take(self.take(1)[0]).decode()
        except UnicodeDecodeError:
            raise ValueError("Corrupted zoo.codec stream: a name in its header is not UTF-8.") from None


def read_varint(data, at=0):
    """`(value, the index after it)` of the varint at `data[at:]`; data that ends inside it
    or a varint over 10 bytes is a one-line ValueError."""
    reader = _Reader(data, at)
    try:
        return reader.varint(), reader.at
    except _Truncated:
        raise ValueError(f"Truncated data: {len(data)} bytes end inside a varint.") from None


def unpack(data):
    """`pack`'s bytes -> `(header, labels int32 [count] or None, payload)`; a stream that is
    not one, of another format version, truncated or corrupted is a one-line ValueError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"Expected the stream's bytes, got {type(data).__name__}.")
    data = bytes(data)
    if data[:len(MAGIC)] != MAGIC:
        if len(data) < len(MAGIC) and MAGIC.startswith(data):
            raise ValueError(f"Truncated zoo.codec stream: {len(data)} bytes.")
        raise ValueError("Not a zoo.codec stream: it does not start with b'ZOOC'.")
    if len(data) == len(MAGIC):
        raise ValueError(f"Truncated zoo.codec stream: {len(data)} bytes.")
    if data[len(MAGIC)] != VERSION:
        raise ValueError(f"Unknown zoo.codec format version {data[len(MAGIC)]}: this zoo reads version {VERSION}.")
    reader = _Reader(data, len(MAGIC) + 1)
    try:
        codec = reader.take(1)[0]
        if codec >= len(CODECS):
            raise ValueError(f"Corrupted zoo.codec stream: codec {codec}, this zoo has {len(CODECS)}.")
        header = {"codec": CODECS[codec], "model": reader.string(), "weights_digest": reader.take(DIGEST_BYTES)}
        numbers = [reader.varint() for _ in range(7)]
        header.update(image_shape=numbers[:3], num_levels=numbers[3], count=numbers[4], batch_size=numbers[5],
                      label_bytes=numbers[6], images_digest=reader.take(DIGEST_BYTES),
                      payload_length=reader.varint())
    except _Truncated:
        raise ValueError(f"Truncated zoo.codec stream: {len(data)} bytes end inside its header.") from None
    labels_size = header["label_bytes"] * header["count"]
    expected = reader.at + labels_size + header["payload_length"] + DIGEST_BYTES
    if len(data) < expected:
        raise ValueError(f"Truncated zoo.codec stream: {len(data)} of its {expected} bytes.")
    body = data[:-DIGEST_BYTES]
    if len(data) > expected or _digest(body) != data[-DIGEST_BYTES:]:
        raise ValueError("Corrupted zoo.codec stream: its digest does not match its contents.")
    if header["label_bytes"] not in (0, 1, 2, 4):  # a stream no `pack` wrote
        raise ValueError(f"Corrupted zoo.codec stream: {header['label_bytes']} bytes per label.")
    labels = None
    if header["label_bytes"]:
        labels = np.frombuffer(body[reader.at:reader.at + labels_size], f"<u{header['label_bytes']}").astype(np.int32)
    return header, labels, body[reader.at + labels_size:]


def check_model(header, model):
    """Refuses decoding a stream with a model that is not the encoder's."""
    found = weights_digest(model)
    if found != header["weights_digest"]:
        raise ValueError(f"This stream was coded with other weights of {header['model']!r} (weights digest "
                         f"{header['weights_digest'].hex()}, the model's {found.hex()}): refusing to decode.")
    expected = [list(model.image_shape), model.num_levels, label_bytes(model.num_classes)]
    if [header["image_shape"], header["num_levels"], header["label_bytes"]] != expected:
        raise ValueError(f"This stream holds {header['image_shape']} images of {header['num_levels']} levels "
                         f"({header['label_bytes']} bytes a label); the model codes {expected[0]} with {expected[1]} "
                         f"({expected[2]}).")


def check_decoded(header, images, labels):
    """Refuses decoded images whose digest is not the encoder's (the decoder computed other
    probabilities than the encoder: another machine, or a coder's bug)."""
    if images_digest(images, labels) != header["images_digest"]:
        raise ValueError("The decoded images do not match the stream's checksum: this machine computes the "
                         "model's probabilities differently from the encoder's; refusing to return them.")
