"""Read PyTorch zip checkpoints (`torch.save` since PyTorch 1.6) without PyTorch: the zip archive,
its pickled state dict and the raw tensor storages, decoded with numpy.

A checkpoint is untrusted input: unpickling runs whatever callables the pickle names. This reader
resolves names through an allow-list only (ordered dicts, tensor rebuild records, typed storages);
plain data (numbers, strings, tuples, lists, dicts) needs no names. Any other global, such as a
`__reduce__` to `os.system`, is refused before it is called, so nothing in the file ever runs.

Layout of the archive (torch/serialization.py, `_save`):
    <prefix>/data.pkl        the pickled object; tensors are `_rebuild_tensor_v2(storage, offset,
                             size, stride, ...)` records whose storages are persistent ids
                             ("storage", <torch.XStorage>, key, location, numel)
    <prefix>/data/<key>      raw little-endian bytes of storage <key>
    <prefix>/byteorder       "little" or "big" (absent in older files: little)
"""

import collections
import io
import os
import pickle
import zipfile
import zlib

import numpy as np

# The 11 bytes every pre-1.6 (non-zip) torch.save file starts with: pickle protocol 2 and the
# long integer 0x1950a86a20f9469cfc6c, torch's "magic number".
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_MAX_PICKLE_BYTES = 64 << 20  # a state dict's pickle is kilobytes; refuse to inflate more

# torch storage class name -> numpy dtype (bfloat16 is widened to float32 on load)
STORAGE_DTYPES = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "bf16",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "UntypedStorage": "u1",
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not hold the expected tensors, with the reason."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint whose pickle names a callable outside the allow-list; nothing was run."""


class _StorageType:
    """Stands in for `torch.FloatStorage` and friends: only carries the element type."""

    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage:
    """One raw storage of the archive, decoded as a flat numpy array of `numel` elements."""

    def __init__(self, key, array):
        self.key = key
        self.array = array


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    """torch._utils._rebuild_tensor_v2 in numpy: the strided view of `storage`, copied."""
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"a tensor record refers to {type(storage).__name__}, not a storage")
    if not (
        isinstance(storage_offset, int)
        and isinstance(size, tuple)
        and isinstance(stride, tuple)
        and len(size) == len(stride)
        and all(isinstance(n, int) and n >= 0 for n in size + stride)
        and storage_offset >= 0
    ):
        raise CheckpointError(f"a tensor record on storage {storage.key} has a malformed offset/size/stride")
    flat = storage.array
    if 0 in size:
        return np.zeros(size, flat.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= flat.size:
        raise CheckpointError(
            f"a tensor of shape {size} reaches element {last} of storage {storage.key}, which holds {flat.size}"
        )
    if not size:  # a 0-d tensor (as_strided would make it 1-d)
        return np.array(flat[storage_offset])
    view = np.lib.stride_tricks.as_strided(
        flat[storage_offset:], shape=size, strides=[s * flat.itemsize for s in stride], writeable=False
    )
    return np.array(view)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *unused):
    """torch._utils._rebuild_parameter: an nn.Parameter is its data here."""
    if not isinstance(data, np.ndarray):
        raise CheckpointError(f"a parameter record wraps {type(data).__name__}, not a tensor")
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves globals through `_ALLOWED` only and storages through the archive."""

    def __init__(self, data, load_storage):
        super().__init__(io.BytesIO(data))
        self._load_storage = load_storage

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise UnsafeCheckpointError(
                f"the checkpoint's pickle asks for {module}.{name}, which is not a tensor, storage or "
                "ordered dict; refused without running anything. A state dict saved with "
                "torch.save(model.state_dict(), path) needs nothing else."
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"unknown persistent record {pid!r:.80} in the checkpoint's pickle")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(numel, int):
            raise CheckpointError(f"malformed storage record {pid!r:.80} in the checkpoint's pickle")
        return self._load_storage(storage_type, key, numel)


def _decode(raw, dtype, byteorder):
    if dtype == "bf16":  # the upper half of a float32
        halves = np.frombuffer(raw, dtype=("<" if byteorder == "little" else ">") + "u2")
        return (halves.astype(np.uint32) << 16).view(np.float32)
    if dtype in ("u1", "i1", "?"):
        return np.frombuffer(raw, dtype=dtype)
    return np.frombuffer(raw, dtype=("<" if byteorder == "little" else ">") + dtype).astype(dtype)


def read_state_dict(path):
    """The tensors of a PyTorch zip checkpoint at `path` as an ordered dict name -> numpy array.

    A checkpoint that wraps its state dict (e.g. {"state_dict": {...}, "epoch": 3}) is unwrapped.
    Raises FileNotFoundError, CheckpointError (corrupt, truncated, legacy format, not a state dict)
    or UnsafeCheckpointError (the pickle names anything outside the allow-list).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint at {path}.")
    with open(path, "rb") as handle:
        head = handle.read(len(_LEGACY_MAGIC))
    if not zipfile.is_zipfile(path):
        if head == _LEGACY_MAGIC:
            raise CheckpointError(
                f"{path} is a legacy (pre-1.6, non-zip) PyTorch checkpoint; re-save it with a recent "
                "PyTorch: torch.save(torch.load(path), new_path)."
            )
        raise CheckpointError(
            f"{path} is not a PyTorch zip checkpoint (no zip directory: truncated or another format)."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            obj = _load_archive(path, archive)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise CheckpointError(f"{path} is a corrupt or truncated checkpoint archive: {error}") from None
    return _as_state_dict(path, obj)


def _load_archive(path, archive):
    pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") or name == "data.pkl"]
    if len(pickles) != 1:
        raise CheckpointError(f"{path} holds {len(pickles)} data.pkl records; a PyTorch checkpoint holds exactly one.")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if f"{prefix}byteorder" in archive.namelist():
        byteorder = archive.read(f"{prefix}byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{path} declares an unknown byte order {byteorder!r}.")
    if archive.getinfo(pickles[0]).file_size > _MAX_PICKLE_BYTES:
        raise CheckpointError(f"{path}: {pickles[0]} is larger than any state dict's pickle; refused.")
    storages = {}

    def load_storage(storage_type, key, numel):
        if key not in storages:
            name = f"{prefix}data/{key}"
            itemsize = 2 if storage_type.dtype == "bf16" else np.dtype(storage_type.dtype).itemsize
            try:
                info = archive.getinfo(name)
            except KeyError:
                raise CheckpointError(f"{path} lacks the storage record {name} that its pickle refers to.") from None
            if numel < 0 or info.file_size < numel * itemsize:
                raise CheckpointError(
                    f"{path}: storage {name} holds {info.file_size} bytes, fewer than the {numel} x "
                    f"{itemsize} its pickle declares (truncated?)."
                )
            with archive.open(info) as handle:
                raw = handle.read(numel * itemsize)
            if len(raw) != numel * itemsize:
                raise CheckpointError(f"{path}: storage {name} is truncated.")
            storages[key] = _Storage(key, _decode(raw, storage_type.dtype, byteorder))
        return storages[key]

    data = archive.read(pickles[0])
    try:
        return _RestrictedUnpickler(data, load_storage).load()
    except CheckpointError:
        raise
    except Exception as error:  # a malformed pickle fails in many ways; all mean the same to a user
        raise CheckpointError(f"{path}: the pickled state dict is corrupt ({type(error).__name__}: {error}).") from None


def _as_state_dict(path, obj):
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors.")
    tensors = collections.OrderedDict((str(k), v) for k, v in obj.items() if isinstance(v, np.ndarray))
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors.")
    return tensors
