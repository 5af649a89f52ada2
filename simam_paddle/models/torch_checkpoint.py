"""Read PyTorch checkpoints (``torch.save`` files) into numpy arrays, without PyTorch and without running them.

A ``torch.save`` file is a pickle whose tensors point at raw storages kept beside it. Two layouts exist:

- the zip format (PyTorch >= 1.6): ``<name>/data.pkl`` holds the pickled object, ``<name>/data/<key>``
  each storage's bytes, ``<name>/byteorder`` ``little`` or ``big`` (absent in older files: little);
- the legacy format (before 1.6, and ``_use_new_zipfile_serialization=False``, which the official SimAM
  code uses for its released weights): pickles of a magic number, a protocol version and system info,
  then the pickled object, then the list of storage keys, then each storage as an int64 element count
  followed by its bytes.

Unpickling is restricted: only the few globals that rebuild tensors are resolved (to local functions
here, never to PyTorch's), so a file that names any other global, e.g. ``os.system``, is refused before
anything from it runs.
"""
import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, BinaryIO, Dict, Optional, Tuple

import numpy as np

__all__ = ["load_torch_checkpoint"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# Storage class name -> numpy dtype ("bfloat16" is widened to float32 when read).
_STORAGE_DTYPES: Dict[str, str] = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}


class _StorageType:
    """Stands for a ``torch.*Storage`` class: only its element type is needed."""

    def __init__(self, name: str):
        self.name, self.dtype = name, _STORAGE_DTYPES[name]


class _StorageRef:
    """A storage the pickle points at; its bytes are attached once read."""

    def __init__(self, key: str, dtype: str, offset: int = 0, numel: Optional[int] = None):
        self.key, self.dtype, self.offset, self.numel = key, dtype, offset, numel


class _TensorRef:
    """A tensor to build from a storage once all storages are known."""

    def __init__(self, storage: _StorageRef, offset: int, size: Tuple[int, ...], stride: Tuple[int, ...]):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("a tensor in the file is not backed by a storage")
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    return data


# (module, name) -> what it stands for. Nothing else in a file is resolved.
_ALLOWED: Dict[Tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch", "Size"): tuple,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _Refused(pickle.UnpicklingError):
    """The file asks for something a checkpoint of tensors does not need."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`_ALLOWED` globals; storages become :class:`_StorageRef`."""

    def __init__(self, file: BinaryIO, path: str, legacy: bool):
        super().__init__(file, encoding="utf-8")
        self.path, self.legacy = path, legacy
        self.storages: Dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(
                f"{self.path} refers to the global {module}.{name}, which a checkpoint of tensors does not need; "
                f"refused (only tensor rebuilding is allowed), nothing from the file was run") from None

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage" and len(pid) >= 5
                and isinstance(pid[1], _StorageType)):
            raise _Refused(f"{self.path} holds an unknown persistent id {str(pid)[:80]}")
        storage_type, key = pid[1], str(pid[2])
        root = self.storages.setdefault(key, _StorageRef(key, storage_type.dtype))
        view = pid[5] if self.legacy and len(pid) > 5 else None
        if view is not None:  # an old storage view: a slice of its root storage
            view_key, offset, view_size = view
            return self.storages.setdefault(str(view_key), _StorageRef(key, storage_type.dtype, offset, view_size))
        return root


def _decode(raw: bytes, dtype: str, byteorder: str) -> np.ndarray:
    if dtype == "bfloat16":
        order = "<" if byteorder == "little" else ">"
        halves = np.frombuffer(raw, dtype=np.dtype("uint16").newbyteorder(order))
        return (halves.astype(np.uint32) << 16).view(np.float32)
    if dtype == "bool":
        return np.frombuffer(raw, dtype=np.bool_)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<" if byteorder == "little" else ">"))


def _materialise(obj: Any, storages: Dict[str, np.ndarray], path: str) -> Any:
    """Replace every :class:`_TensorRef` in ``obj`` by a numpy array (a copy, native byte order)."""
    if isinstance(obj, _TensorRef):
        ref = obj.storage
        data = storages[ref.key]
        if ref.numel is not None:
            data = data[ref.offset:ref.offset + ref.numel]
        needed = obj.offset + sum((n - 1) * s for n, s in zip(obj.size, obj.stride)) + 1 if all(obj.size) else 0
        if obj.offset < 0 or needed > data.size:
            raise ValueError(f"{path} is damaged: a tensor of size {list(obj.size)} reaches past its storage "
                             f"({data.size} elements)")
        view = np.lib.stride_tricks.as_strided(data[obj.offset:] if data.size else data, shape=obj.size,
                                               strides=[s * data.itemsize for s in obj.stride], writeable=False)
        # np.array, not np.ascontiguousarray, which would turn a 0-d tensor into shape (1,).
        return np.array(view, dtype=view.dtype.newbyteorder("="), order="C", copy=True)
    if isinstance(obj, dict):  # OrderedDict stays OrderedDict
        return type(obj)((k, _materialise(v, storages, path)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_materialise(v, storages, path) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialise(v, storages, path) for v in obj)
    if isinstance(obj, _StorageRef):
        return storages[obj.key]
    return obj


def _not_a_checkpoint(path: str, why: str) -> ValueError:
    return ValueError(f"{path} is not a PyTorch checkpoint ({why}); give a file written by torch.save")


def _unpickle(file: BinaryIO, path: str, legacy: bool) -> Tuple[Any, Dict[str, _StorageRef]]:
    unpickler = _RestrictedUnpickler(file, path, legacy)
    try:
        obj = unpickler.load()
    except _Refused as err:
        raise ValueError(str(err)) from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, KeyError, TypeError,
            ValueError) as err:
        raise _not_a_checkpoint(path, f"unreadable pickle: {type(err).__name__}: {err}") from None
    return obj, unpickler.storages


def _load_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise _not_a_checkpoint(path, f"a zip file without one <name>/data.pkl (found {len(pickles)})")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise ValueError(f"{path} has an unknown byteorder {byteorder!r}; expected little or big")
        obj, refs = _unpickle(io.BytesIO(archive.read(pickles[0])), path, legacy=False)
        storages = {}
        for key, ref in refs.items():
            member = f"{prefix}data/{key}"
            if member not in names:
                raise ValueError(f"{path} is damaged: storage {member} is missing")
            storages[key] = _decode(archive.read(member), ref.dtype, byteorder)
    return _materialise(obj, storages, path)


def _load_legacy(file: BinaryIO, path: str) -> Any:
    magic, _ = _unpickle(file, path, legacy=False)
    if magic != _LEGACY_MAGIC:
        raise _not_a_checkpoint(path, "neither a zip file nor a pickle starting with torch's magic number")
    protocol, _ = _unpickle(file, path, legacy=False)
    if protocol != _LEGACY_PROTOCOL:
        raise ValueError(f"{path} uses legacy protocol {protocol!r}; only {_LEGACY_PROTOCOL} is known")
    sys_info, _ = _unpickle(file, path, legacy=False)
    byteorder = "little" if not isinstance(sys_info, dict) or sys_info.get("little_endian", True) else "big"
    obj, refs = _unpickle(file, path, legacy=True)
    keys, _ = _unpickle(file, path, legacy=False)
    if not isinstance(keys, list):
        raise ValueError(f"{path} is damaged: no list of storage keys after the pickled object")
    dtypes = {ref.key: ref.dtype for ref in refs.values()}
    storages: Dict[str, np.ndarray] = {}
    for key in keys:
        if key not in dtypes:
            raise ValueError(f"{path} is damaged: storage {key!r} is not used by any tensor")
        dtype = dtypes[key]
        itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
        head = file.read(8)
        if len(head) != 8:
            raise ValueError(f"{path} is truncated: storage {key!r} is missing")
        numel = struct.unpack("<q" if byteorder == "little" else ">q", head)[0]
        raw = file.read(numel * itemsize)
        if numel < 0 or len(raw) != numel * itemsize:
            raise ValueError(f"{path} is truncated: storage {key!r} has {len(raw)} of {numel * itemsize} bytes")
        storages[key] = _decode(raw, dtype, byteorder)
    missing = sorted(set(dtypes) - set(storages))
    if missing:
        raise ValueError(f"{path} is damaged: storage {missing[0]!r} is missing")
    return _materialise(obj, storages, path)


def load_torch_checkpoint(path: str) -> Any:
    """Read a ``torch.save`` file into Python objects with numpy arrays for tensors, without PyTorch.

    Both the zip format (PyTorch >= 1.6) and the legacy format are read. Tensors become C-contiguous
    numpy arrays of the same dtype (float32/64, float16, int64/32/16/8, uint8, bool; bfloat16 becomes
    float32) and shape, views honouring their storage offset and strides; dicts (``OrderedDict`` too),
    lists, tuples, numbers and strings are kept. Only the globals that rebuild tensors are allowed, so
    nothing in the file is executed.

    Args:
        path (str): The checkpoint, e.g. ``model_best.pth.tar``.

    Returns:
        Any: The saved object, typically a dict such as ``{"state_dict": {name: numpy.ndarray}, ...}``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a PyTorch checkpoint, is damaged, or names a global other than the
            tensor-rebuilding ones (one line naming it).

    Examples:
        >>> from simam_paddle.models import load_torch_checkpoint
        >>> state = load_torch_checkpoint("tests/data/official/official_cifar_resnet20_simam.pth.tar")
        >>> state["state_dict"]["conv1.weight"].shape
        (16, 3, 3, 3)
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    if zipfile.is_zipfile(path):
        try:
            return _load_zip(path)
        except zipfile.BadZipFile as err:
            raise _not_a_checkpoint(path, f"damaged zip file: {err}") from None
    with open(path, "rb") as file:
        if file.read(1) != b"\x80":
            raise _not_a_checkpoint(path, "neither a zip file nor a pickle")
        file.seek(0)
        return _load_legacy(file, path)
