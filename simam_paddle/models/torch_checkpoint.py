"""Read PyTorch checkpoints (``torch.save`` files) into numpy arrays, without PyTorch and without running them.

A ``torch.save`` file is a pickle whose tensors point at raw storages kept beside it. Two layouts exist:

- the zip format (PyTorch >= 1.6): ``<name>/data.pkl`` holds the pickled object, ``<name>/data/<key>``
  each storage's bytes, ``<name>/byteorder`` ``little`` or ``big`` (absent in older files: little);
- the legacy format (before 1.6, and ``_use_new_zipfile_serialization=False``, which the official SimAM
  code uses for its released weights): pickles of a magic number, a protocol version and system info,
  then the pickled object, then the list of storage keys, then each storage as an int64 element count
  followed by its bytes.

Unpickling is restricted: only the few globals that rebuild tensors are resolved (to local, immutable
callables here, never to PyTorch's), so a file that names any other global, e.g. ``os.system``, is refused
before anything from it runs, and pickle's BUILD opcode may only set the attributes of a dict the file
itself created. A file is treated as hostile until checked: before the unpickler runs, a scan of the
pickle's opcodes refuses lengths past its end, memo indices a pickler never writes and tuples nested more
than :data:`_MAX_DEPTH` deep (hashing those crashes Python); before any storage is read, every tensor's
reachable elements are checked against the bytes the file holds, and the object's nesting, container
entries and tensor sizes against the limits below. Each refusal is one :class:`TorchCheckpointError`
naming the file and the problem.
"""
import collections
import io
import os
import pickle
import pickletools
import reprlib
import struct
import zipfile
import zlib
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["TorchCheckpointError", "load_torch_checkpoint"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# Limits on what a file may ask for. Real checkpoints stay far below each: the official ImageNet ResNet-101
# pickle is under 1 MiB, a few thousand container entries, nesting 5 deep, its largest tensor 2.1M elements.
_MAX_PICKLE_BYTES = 64 << 20  # one pickle (zip: data.pkl; legacy: all five pickles together)
_MAX_EXPANSION = 16  # zip: declared uncompressed bytes <= 16 x the archive's size (torch stores, ratio 1) ...
_EXPANSION_SLACK = 1 << 20  # ... + 1 MiB, so tiny archives are not refused for their headers
_MAX_DEPTH = 100  # nesting of containers (and of tuples inside the pickle)
_MAX_ENTRIES = 1_000_000  # container entries visited, shared references counted each time they are reached
_MAX_DIMS = 64  # numpy's own limit
_MAX_TENSOR_ELEMENTS = 1 << 31
_MAX_INT = 1 << 62  # offsets, sizes and strides beyond this are damage, not tensors
# All tensors together may hold 4x the elements the storages hold (tied weights are views of one storage;
# expanded stride-0 tensors more), + 64 Ki for tiny files.
_ELEMENTS_PER_STORED = 4
_ELEMENT_SLACK = 1 << 16

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
_SCALARS = (str, int, float, bool, bytes, type(None))


class TorchCheckpointError(ValueError):
    """A file that is not a PyTorch checkpoint, is damaged, or asks for more than a checkpoint of tensors needs.

    The message is one line naming the file and the problem.
    """


class _Refused(pickle.UnpicklingError):
    """Raised inside the unpickler; the message continues a sentence that starts with the file's path."""


def _brief(obj: Any) -> str:
    """A short repr, safe on deep or self-similar objects from a hostile file."""
    return reprlib.repr(obj)[:80]


def _itemsize(dtype: str) -> int:
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


class _Frozen:
    """Objects the unpickler hands out: no ``__dict__``, and pickle's BUILD on them is refused.

    BUILD on an object calls its ``__setstate__``; without this, BUILD on a shared storage type could change
    its dtype for every later load in the process, and BUILD on a tensor could change it after its checks.
    """

    __slots__ = ()
    what = "object"

    def __setstate__(self, state: Any) -> None:
        raise _Refused(f"applies pickle's BUILD (set state) to a {self.what}, which a checkpoint never does; "
                       "refused")


class _StorageType(_Frozen):
    """Stands for a ``torch.*Storage`` class: only its element type is needed."""

    __slots__ = ("name", "dtype")
    what = "storage type"

    def __init__(self, name: str):
        self.name, self.dtype = name, _STORAGE_DTYPES[name]


class _StorageRef(_Frozen):
    """A storage the pickle points at; ``offset`` and ``numel`` are set for a legacy view of a root storage."""

    __slots__ = ("key", "dtype", "offset", "numel")
    what = "storage"

    def __init__(self, key: str, dtype: str, offset: int = 0, numel: Optional[int] = None):
        self.key, self.dtype, self.offset, self.numel = key, dtype, offset, numel


class _TensorRef(_Frozen):
    """A tensor to build from a storage once all storages are known and checked."""

    __slots__ = ("storage", "offset", "size", "stride")
    what = "tensor"

    def __init__(self, storage: _StorageRef, offset: int, size: Tuple[int, ...], stride: Tuple[int, ...]):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class _Rebuild(_Frozen):
    """An allowed global: a callable that cannot be changed through BUILD, unlike a function's attributes."""

    __slots__ = ("function",)
    what = "tensor-rebuilding global"

    def __init__(self, function: Callable[..., Any]):
        self.function = function

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)


def _ints(values: Any, what: str, low: int) -> Tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or len(values) > _MAX_DIMS:
        raise _Refused(f"holds a tensor whose {what} is not a tuple of at most {_MAX_DIMS} integers")
    for value in values:
        if type(value) is not int or not low <= value <= _MAX_INT:
            raise _Refused(f"holds a tensor whose {what} has the entry {_brief(value)}, not an integer in "
                           f"[{low}, 2**62]")
    return tuple(values)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, *unused: Any) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise _Refused("holds a tensor that is not backed by a storage")
    size, stride = _ints(size, "size", 0), _ints(stride, "stride", -_MAX_INT)
    if len(size) != len(stride):
        raise _Refused(f"holds a tensor with {len(size)} sizes but {len(stride)} strides")
    offset = _ints((storage_offset,), "storage offset", 0)[0]
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data: Any, *unused: Any) -> _TensorRef:
    if not isinstance(data, _TensorRef):
        raise _Refused("holds a parameter that is not a tensor")
    return data


def _ordered_dict(*args: Any) -> collections.OrderedDict:
    if args:  # torch.save pickles OrderedDict() and then its items
        raise _Refused("builds an OrderedDict from arguments, which torch.save never writes")
    return collections.OrderedDict()


def _size(values: Any = ()) -> Tuple[int, ...]:
    return _ints(values, "size", 0)


# (module, name) -> what it stands for. Nothing else in a file is resolved.
_ALLOWED: Dict[Tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _Rebuild(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_tensor"): _Rebuild(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_parameter"): _Rebuild(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _Rebuild(_rebuild_parameter),
    ("collections", "OrderedDict"): _Rebuild(_ordered_dict),
    ("torch", "Size"): _Rebuild(_size),
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`_ALLOWED` globals; storages become :class:`_StorageRef`."""

    def __init__(self, file: BinaryIO, legacy: bool):
        super().__init__(file, encoding="utf-8")
        self.legacy = legacy
        self.storages: Dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise _Refused(f"refers to the global {_brief(module)}.{_brief(name)}, which a checkpoint of tensors "
                           "does not need; refused (only tensor rebuilding is allowed), nothing from the file "
                           "was run") from None

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)):
            raise _Refused(f"holds an unknown persistent id {_brief(pid)}")
        storage_type, key = pid[1], pid[2]
        root = self.storages.setdefault(key, _StorageRef(key, storage_type.dtype))
        view = pid[5] if self.legacy and len(pid) > 5 else None
        if view is None:
            return root
        # An old storage view: a slice of its root storage.
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str)):
            raise _Refused(f"holds a storage view that is not (key, offset, size): {_brief(view)}")
        offset, numel = _ints(view[1:], "storage view", 0)
        return self.storages.setdefault(view[0], _StorageRef(key, storage_type.dtype, offset, numel))


_MARK = None  # a mark on the scanned stack; other entries are the nesting depth of a tuple (0: not a tuple)
_TUPLES = {"EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def _pop(stack: List[Optional[int]], before: List[Any]) -> List[int]:
    """Pop what an opcode takes, as its stack effect says; IndexError when the stack has less."""
    popped = []
    if pickletools.markobject in before:
        while stack[-1] is not _MARK:
            popped.append(stack.pop())
        stack.pop()
        before = before[:before.index(pickletools.markobject)]
    for _ in before:
        if stack[-1] is _MARK:
            raise IndexError("a mark where an object was expected")
        popped.append(stack.pop())
    return popped


def _scan(data: bytes, start: int) -> int:
    """Check the pickle at ``data[start:]`` without running it and return where it ends.

    Raises ``_Refused`` for memo indices a pickler never writes (the unpickler would allocate an array that
    long) and tuples nested deeper than :data:`_MAX_DEPTH` (hashing one as a dict key overflows the C
    stack); ``ValueError`` (from ``pickletools``) for a length past the end, where the unpickler would first
    allocate it; ``IndexError`` or ``KeyError`` for a stack or memo the opcodes do not match.
    """
    stream = io.BytesIO(data)
    stream.seek(start)
    stack: List[Optional[int]] = []
    memo: Dict[int, Optional[int]] = {}
    for op, arg, _ in pickletools.genops(stream):
        if op.name in _PUTS or op.name in ("MEMOIZE", "DUP"):
            if stack[-1] is _MARK:
                raise IndexError(f"{op.name} on a mark")
            if op.name == "DUP":
                stack.append(stack[-1])
                continue
            index = len(memo) if op.name == "MEMOIZE" else arg
            if index > len(memo):
                raise _Refused(f"stores memo entry {index} after only {len(memo)}, which a pickler never does")
            memo[index] = stack[-1]
            continue
        if op.name in _GETS:
            stack.append(memo[arg])
            continue
        popped = _pop(stack, op.stack_before)
        if op.name in _TUPLES:
            depth = 1 + max((d for d in popped if d), default=0)
            if depth > _MAX_DEPTH:
                raise _Refused(f"nests tuples more than {_MAX_DEPTH} deep, which no checkpoint does")
            stack.append(depth)
        else:
            stack.extend(_MARK if s is pickletools.markobject else 0 for s in op.stack_after)
    return stream.tell()


_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, KeyError, TypeError,
                  ValueError, struct.error, OverflowError, RecursionError, MemoryError)


def _not_a_checkpoint(path: str, why: str) -> TorchCheckpointError:
    return TorchCheckpointError(f"{path} is not a PyTorch checkpoint ({why}); give a file written by torch.save")


def _unpickle(data: bytes, start: int, path: str, legacy: bool) -> Tuple[Any, Dict[str, _StorageRef], int]:
    """Scan, then unpickle, the pickle at ``data[start:]``: (object, storages it names, where it ends)."""
    try:
        end = _scan(data, start)
        unpickler = _RestrictedUnpickler(io.BytesIO(data[start:end]), legacy)
        obj = unpickler.load()
    except _Refused as err:
        raise TorchCheckpointError(f"{path} {err}") from None
    except _PICKLE_ERRORS as err:
        raise _not_a_checkpoint(path, f"unreadable pickle: {type(err).__name__}: {str(err)[:200]}") from None
    return obj, unpickler.storages, end


def _check_tensor(ref: Any, available: Dict[str, int], path: str) -> int:
    """The elements of a tensor (or a bare storage), refusing one that reaches outside its storage."""
    storage = ref.storage if isinstance(ref, _TensorRef) else ref
    present = available[storage.key]
    if storage.numel is not None:  # a legacy view: a slice of its root storage
        if storage.offset + storage.numel > present:
            raise TorchCheckpointError(f"{path} is damaged: a storage view of elements {storage.offset:,} to "
                                       f"{storage.offset + storage.numel:,} reaches past its storage ({present:,} "
                                       "elements)")
        present = storage.numel
    if isinstance(ref, _StorageRef):
        return present
    numel, low, high = 1, ref.offset, ref.offset
    for n, s in zip(ref.size, ref.stride):
        numel, low, high = numel * n, low + (n - 1) * min(s, 0), high + (n - 1) * max(s, 0)
    if numel == 0:
        return 0
    where = f"a tensor of size {_brief(list(ref.size))}, stride {_brief(list(ref.stride))} and offset {ref.offset:,}"
    if numel > _MAX_TENSOR_ELEMENTS:
        raise TorchCheckpointError(f"{path} is refused: {where} has {numel:,} elements, more than the "
                                   f"{_MAX_TENSOR_ELEMENTS:,} a tensor may have here")
    if low < 0:
        raise TorchCheckpointError(f"{path} is damaged: {where} reaches before the start of its storage "
                                   f"(element {low:,})")
    if high >= present:
        raise TorchCheckpointError(f"{path} is damaged: {where} reaches past its storage ({present:,} elements; "
                                   f"it reads element {high:,})")
    return numel


def _check_tree(obj: Any, available: Dict[str, int], path: str) -> None:
    """Refuse, before any storage is read, an object nested too deep, with too many entries (shared ones
    counted each time they are reached, as converting them would), with keys or objects a checkpoint does
    not hold, or with tensors outside their storages or more elements than the storages can give.

    ``available``: each storage's element count, as the file holds it.
    """
    allowance = _ELEMENTS_PER_STORED * sum(available.values()) + _ELEMENT_SLACK
    elements = entries = 0
    pending: List[Tuple[Any, int]] = [(obj, 0)]
    while pending:
        item, depth = pending.pop()
        children: Any = ()
        if isinstance(item, (_TensorRef, _StorageRef)):
            elements += _check_tensor(item, available, path)
            if elements > allowance:
                raise TorchCheckpointError(
                    f"{path} is refused: its tensors have more than {elements:,} elements together, more than "
                    f"{_ELEMENTS_PER_STORED}x the {sum(available.values()):,} its storages hold")
        elif isinstance(item, dict):
            for key in item:
                if not isinstance(key, _SCALARS):
                    raise TorchCheckpointError(f"{path} holds a dict keyed by a {type(key).__name__}, which a "
                                               "checkpoint does not hold (keys are strings or numbers)")
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        elif isinstance(item, (set, frozenset)):
            if not all(isinstance(element, _SCALARS) for element in item):
                raise TorchCheckpointError(f"{path} holds a set of other than strings or numbers")
        elif not isinstance(item, _SCALARS + (bytearray,)):
            what = item.what if isinstance(item, _Frozen) else type(item).__name__
            raise TorchCheckpointError(f"{path} holds a {what} object, which a checkpoint of tensors does not hold")
        if not children:
            continue
        entries += len(children)
        if entries > _MAX_ENTRIES:
            raise TorchCheckpointError(
                f"{path} is refused: its object has more than {_MAX_ENTRIES:,} container entries (shared ones "
                "counted each time they are reached), far more than a checkpoint of tensors")
        if depth >= _MAX_DEPTH:
            raise TorchCheckpointError(f"{path} is refused: its object is nested more than {_MAX_DEPTH} deep, "
                                       "far deeper than a checkpoint of tensors")
        pending.extend((child, depth + 1) for child in children)


def _decode(raw: bytes, dtype: str, byteorder: str) -> np.ndarray:
    if dtype == "bfloat16":
        order = "<" if byteorder == "little" else ">"
        halves = np.frombuffer(raw, dtype=np.dtype("uint16").newbyteorder(order))
        return (halves.astype(np.uint32) << 16).view(np.float32)
    if dtype == "bool":
        return np.frombuffer(raw, dtype=np.bool_)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<" if byteorder == "little" else ">"))


def _materialise(obj: Any, storages: Dict[str, np.ndarray]) -> Any:
    """Replace every :class:`_TensorRef` in ``obj`` by a numpy array (a copy, native byte order).

    Only after :func:`_check_tree`, which bounds the recursion and the elements copied.
    """
    if isinstance(obj, (_TensorRef, _StorageRef)):
        ref = obj.storage if isinstance(obj, _TensorRef) else obj
        data = storages[ref.key]
        if ref.numel is not None:
            data = data[ref.offset:ref.offset + ref.numel]
        if isinstance(obj, _StorageRef):
            return data
        dtype = data.dtype.newbyteorder("=")
        if not all(obj.size):
            return np.empty(obj.size, dtype)
        view = np.lib.stride_tricks.as_strided(data[obj.offset:], shape=obj.size,
                                               strides=[s * data.itemsize for s in obj.stride], writeable=False)
        # np.array, not np.ascontiguousarray, which would turn a 0-d tensor into shape (1,).
        return np.array(view, dtype=dtype, order="C", copy=True)
    if isinstance(obj, dict):  # OrderedDict stays OrderedDict
        return type(obj)((k, _materialise(v, storages)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_materialise(v, storages) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialise(v, storages) for v in obj)
    return obj


_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str) -> bytes:
    """A member's bytes, reading no more than it declares (checked against the limits beforehand)."""
    try:
        with archive.open(info) as member:
            raw = member.read(info.file_size)
    except _ZIP_ERRORS as err:
        raise _not_a_checkpoint(path, f"damaged zip file: {type(err).__name__}: {str(err)[:200]}") from None
    if len(raw) != info.file_size:
        raise TorchCheckpointError(f"{path} is damaged: {_brief(info.filename)} has {len(raw):,} of the "
                                   f"{info.file_size:,} bytes it declares")
    return raw


def _load_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        pickles = [n for n in infos if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise _not_a_checkpoint(path, f"a zip file without one <name>/data.pkl (found {len(pickles)})")
        prefix, pickled = pickles[0][: -len("data.pkl")], infos[pickles[0]]
        archive_bytes = os.path.getsize(path)
        allowance = _MAX_EXPANSION * archive_bytes + _EXPANSION_SLACK
        if pickled.file_size > min(_MAX_PICKLE_BYTES, allowance):
            raise TorchCheckpointError(f"{path} is refused: {_brief(pickles[0])} declares {pickled.file_size:,} "
                                       f"bytes, more than the {min(_MAX_PICKLE_BYTES, allowance):,} allowed")
        byteorder = "little"
        if prefix + "byteorder" in infos:
            info = infos[prefix + "byteorder"]
            raw = _read_member(archive, info, path) if info.file_size <= 16 else b"(too long)"
            byteorder = raw.decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise TorchCheckpointError(f"{path} has an unknown byteorder {byteorder!r}; expected little or big")
        obj, refs, _ = _unpickle(_read_member(archive, pickled, path), 0, path, legacy=False)
        members, available, declared = {}, {}, pickled.file_size
        for key, ref in refs.items():
            member = f"{prefix}data/{key}"
            if member not in infos:
                raise TorchCheckpointError(f"{path} is damaged: storage {_brief(member)} is missing")
            members[key], declared = infos[member], declared + infos[member].file_size
            available[key], rest = divmod(infos[member].file_size, _itemsize(ref.dtype))
            if rest:
                raise TorchCheckpointError(f"{path} is damaged: storage {_brief(member)} has "
                                           f"{infos[member].file_size:,} bytes, not a whole number of {ref.dtype}")
        if declared > allowance:
            raise TorchCheckpointError(
                f"{path} is refused: its members declare {declared:,} bytes uncompressed, more than "
                f"{_MAX_EXPANSION}x the archive's {archive_bytes:,} bytes (torch.save stores them uncompressed)")
        _check_tree(obj, available, path)
        storages = {key: _decode(_read_member(archive, info, path), refs[key].dtype, byteorder)
                    for key, info in members.items()}
    return _materialise(obj, storages)


def _legacy_spans(file: BinaryIO, path: str, start: int, keys: List[str], dtypes: Dict[str, str],
                  byteorder: str) -> Dict[str, Tuple[int, int]]:
    """Where each legacy storage's bytes start and how many elements it has, read from the element counts
    before them and checked against the bytes the file holds; the storages' bytes themselves are skipped."""
    file_bytes = os.fstat(file.fileno()).st_size
    spans, position = {}, start
    for key in keys:
        if key not in dtypes:
            raise TorchCheckpointError(f"{path} is damaged: storage {_brief(key)} is not used by any tensor")
        file.seek(position)
        head = file.read(8)
        if len(head) != 8:
            raise TorchCheckpointError(f"{path} is truncated: storage {_brief(key)} is missing")
        numel = struct.unpack("<q" if byteorder == "little" else ">q", head)[0]
        nbytes, left = numel * _itemsize(dtypes[key]), file_bytes - position - 8
        if numel < 0 or nbytes > left:
            raise TorchCheckpointError(f"{path} is truncated or damaged: storage {_brief(key)} declares "
                                       f"{numel:,} elements ({nbytes:,} bytes), but {left:,} bytes follow")
        spans[key], position = (position + 8, numel), position + 8 + nbytes
    return spans


def _load_legacy(file: BinaryIO, path: str) -> Any:
    head = file.read(_MAX_PICKLE_BYTES)  # the five pickles come first, storages after them
    magic, _, position = _unpickle(head, 0, path, legacy=False)
    if type(magic) is not int or magic != _LEGACY_MAGIC:
        raise _not_a_checkpoint(path, "neither a zip file nor a pickle starting with torch's magic number")
    protocol, _, position = _unpickle(head, position, path, legacy=False)
    if type(protocol) is not int or protocol != _LEGACY_PROTOCOL:
        raise TorchCheckpointError(f"{path} uses legacy protocol {_brief(protocol)}; only {_LEGACY_PROTOCOL} "
                                   "is known")
    sys_info, _, position = _unpickle(head, position, path, legacy=False)
    little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
    byteorder = "little" if little is True or little == 1 else "big"
    obj, refs, position = _unpickle(head, position, path, legacy=True)
    keys, _, position = _unpickle(head, position, path, legacy=False)
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise TorchCheckpointError(f"{path} is damaged: no list of storage keys after the pickled object")
    if len(set(keys)) != len(keys):
        raise TorchCheckpointError(f"{path} is damaged: its list of storage keys names a storage twice")
    dtypes = {ref.key: ref.dtype for ref in refs.values()}
    spans = _legacy_spans(file, path, position, keys, dtypes, byteorder)
    missing = sorted(set(dtypes) - set(spans))
    if missing:
        raise TorchCheckpointError(f"{path} is damaged: storage {_brief(missing[0])} is missing")
    _check_tree(obj, {key: numel for key, (_, numel) in spans.items()}, path)
    storages: Dict[str, np.ndarray] = {}
    for key, (start, numel) in spans.items():
        file.seek(start)
        raw = file.read(numel * _itemsize(dtypes[key]))
        if len(raw) != numel * _itemsize(dtypes[key]):  # the file shrank while being read
            raise TorchCheckpointError(f"{path} is truncated: storage {_brief(key)} is short")
        storages[key] = _decode(raw, dtypes[key], byteorder)
    return _materialise(obj, storages)


def load_torch_checkpoint(path: str) -> Any:
    """Read a ``torch.save`` file into Python objects with numpy arrays for tensors, without PyTorch.

    Both the zip format (PyTorch >= 1.6) and the legacy format are read. Tensors become C-contiguous
    numpy arrays of the same dtype (float32/64, float16, int64/32/16/8, uint8, bool; bfloat16 becomes
    float32) and shape, views honouring their storage offset and strides; dicts (``OrderedDict`` too),
    lists, tuples, numbers and strings are kept. Only the globals that rebuild tensors are allowed, so
    nothing in the file is executed, and a file is checked against limits before its storages are read:
    a pickle of at most 64 MiB, nesting at most 100 deep, at most 1,000,000 container entries, every
    tensor inside its storage and at most 2**31 elements, all tensors together at most 4x the elements
    stored, and a zip's members at most 16x the archive's size uncompressed.

    Args:
        path (str): The checkpoint, e.g. ``model_best.pth.tar``.

    Returns:
        Any: The saved object, typically a dict such as ``{"state_dict": {name: numpy.ndarray}, ...}``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        TorchCheckpointError: (a ``ValueError``) ``path`` is not a PyTorch checkpoint, is damaged, names a
            global other than the tensor-rebuilding ones, or goes past a limit; one line naming the file
            and the problem.

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
