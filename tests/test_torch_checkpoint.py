"""The torch-free checkpoint reader (models/torch_checkpoint.py): hostile files, each written here opcode by opcode
(no torch needed), then dtypes, views and byte order of files pickled here, and the fixtures' two formats.

Every hostile file must end in one TorchCheckpointError naming the file and the problem, refused before any
storage is read, and must leave the reader unchanged for the next file (the fixtures still load identically).
"""
import collections
import contextlib
import io
import os
import pickle
import signal
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from simam_paddle import load_official_checkpoint
from simam_paddle.cli import main
from simam_paddle.models import TorchCheckpointError, load_torch_checkpoint
from simam_paddle.models import torch_checkpoint

from official_fixtures import error_line, one_line
from subprocesses import run_python

DATA = os.path.join(os.path.dirname(__file__), "data", "official")
ZIPPED = os.path.join(DATA, "official_cifar_resnet20_simam.pth.tar")
LEGACY = os.path.join(DATA, "official_cifar_resnet20_simam_legacy.pth.tar")


# ---------------------------------------------------------------- writing torch.save files by hand


def value(obj) -> bytes:
    """The opcodes that push ``obj`` (a plain value), without memo entries."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=2)
    pickler.fast = True
    pickler.dump(obj)
    return buffer.getvalue()[2:-1]  # without PROTO and STOP


def global_(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def tensor(key: str, offset, size, stride, numel: int = 4, legacy: bool = False) -> bytes:
    """What torch.save writes for a float32 tensor: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""
    pid = (pickle.MARK + value("storage") + global_("torch", "FloatStorage") + value(key) + value("cpu")
           + value(numel) + (pickle.NONE if legacy else b"") + pickle.TUPLE + pickle.BINPERSID)
    return (global_("torch._utils", "_rebuild_tensor_v2") + pickle.MARK + pid + value(offset) + value(tuple(size))
            + value(tuple(stride)) + pickle.NEWFALSE + pickle.EMPTY_DICT + pickle.TUPLE + pickle.REDUCE)


def mapping(*items) -> bytes:
    """A dict of (key, opcodes of its value) pairs."""
    return pickle.EMPTY_DICT + b"".join(value(key) + ops + pickle.SETITEM for key, ops in items)


def write(path, obj_ops: bytes, storages=None, legacy: bool = False, numel=None) -> str:
    """A checkpoint of the object ``obj_ops`` pushes, with float32 storages {key: values}; ``numel``
    overrides the element count a legacy file declares for each storage."""
    storages = {key: np.asarray(values, "<f4").tobytes() for key, values in (storages or {}).items()}
    payload = b"\x80\x02" + obj_ops + pickle.STOP
    if legacy:
        with open(path, "wb") as f:
            for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
                pickle.dump(header, f, protocol=2)
            f.write(payload)
            pickle.dump(sorted(storages), f, protocol=2)
            for key in sorted(storages):
                f.write(struct.pack("<q", len(storages[key]) // 4 if numel is None else numel) + storages[key])
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", payload)
            for key, raw in storages.items():
                z.writestr(f"archive/data/{key}", raw)
    return str(path)


def refused(path: str, *words: str) -> str:
    """The one-line message of the TorchCheckpointError reading ``path`` raises; it names the file and words."""
    with pytest.raises(TorchCheckpointError) as err:
        load_torch_checkpoint(path)
    message = str(err.value)
    assert "\n" not in message and path in message, message
    for word in words:
        assert word in message, message
    return message


@contextlib.contextmanager
def at_most(seconds: int):
    """Fail, instead of hanging, when the body runs longer than ``seconds``."""
    def expire(*_):
        raise AssertionError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def no_storage_read(monkeypatch):
    """Make reading any storage's bytes fail the test: refusals must come before it."""
    def decode(*_):
        raise AssertionError("a storage was read before the file was refused")

    monkeypatch.setattr(torch_checkpoint, "_decode", decode)


def same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return type(b) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, dict):
        return type(a) is type(b) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


FORMATS = pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])


def test_hand_written_files_load_so_the_refusals_below_are_about_their_one_fault(tmp_path):
    for legacy in (False, True):
        path = write(tmp_path / f"good{legacy}.pth", mapping(
            ("w", tensor("0", 1, (2, 2), (2, 1), legacy=legacy)),
            ("reversed", tensor("0", 3, (4,), (-1,), legacy=legacy)),  # inside its storage: allowed
            ("broadcast", tensor("0", 2, (3, 2), (0, 1), legacy=legacy))), {"0": [0, 1, 2, 3, 4]}, legacy)
        loaded = load_torch_checkpoint(path)
        np.testing.assert_array_equal(loaded["w"], [[1, 2], [3, 4]])
        np.testing.assert_array_equal(loaded["reversed"], [3, 2, 1, 0])
        np.testing.assert_array_equal(loaded["broadcast"], [[2, 3]] * 3)


# ---------------------------------------------------------------- 1. tensors outside their storage


@FORMATS
@pytest.mark.parametrize("offset, size, stride, words", [
    (0, (2,), (-1,), "before the start"),
    (3, (3,), (-2**40,), "before the start"),  # far before: reading it would crash the process
    (3, (2,), (1,), "past its storage"),
    (0, (2,), (2**40,), "past its storage"),
    (1, (2, 2), (3, -1), "past its storage"),  # the negative stride pulls the low end in, not the high one
    (0, (3, 2), (0, 4), "past its storage"),
])
def test_tensor_reaching_outside_its_storage_is_refused_unread(tmp_path, no_storage_read, legacy, offset, size,
                                                                stride, words):
    path = write(tmp_path / "outside.pth", mapping(("w", tensor("0", offset, size, stride, legacy=legacy))),
                 {"0": [0, 1, 2, 3]}, legacy)
    refused(path, words, "4 elements" if "past" in words else "storage")


@pytest.mark.parametrize("offset, size, stride, words", [
    (-1, (1,), (1,), "storage offset"),
    (0, (-2,), (1,), "size"),
    (0, (2, 2), (1,), "2 sizes but 1 strides"),
    (0, (2.5,), (1,), "size"),
    (0, (1,) * 65, (1,) * 65, "at most 64"),
])
def test_tensor_with_malformed_geometry_is_refused(tmp_path, offset, size, stride, words):
    path = write(tmp_path / "geometry.pth", mapping(("w", tensor("0", offset, size, stride))), {"0": [0, 1]})
    refused(path, words)


def test_legacy_storage_view_past_its_root_is_refused(tmp_path, no_storage_read):
    pid = (pickle.MARK + value("storage") + global_("torch", "FloatStorage") + value("0") + value("cpu")
           + value(4) + value(("view", 3, 5)) + pickle.TUPLE + pickle.BINPERSID)
    obj = mapping(("w", global_("torch._utils", "_rebuild_tensor_v2") + pickle.MARK + pid + value(0)
                   + value((5,)) + value((1,)) + pickle.TUPLE + pickle.REDUCE))
    refused(write(tmp_path / "view.pth", obj, {"0": [0, 1, 2, 3]}, legacy=True), "storage view", "past")


# ---------------------------------------------------------------- 2. BUILD on what the unpickler hands out


def test_build_on_a_storage_type_is_refused_and_leaves_the_next_load_unchanged(tmp_path):
    before = {path: load_torch_checkpoint(path) for path in (ZIPPED, LEGACY)}
    turn_float_into_double = (global_("torch", "FloatStorage") + mapping(("dtype", value("float64")))
                              + pickle.BUILD)
    for legacy in (False, True):
        refused(write(tmp_path / f"build{legacy}.pth", mapping(("t", turn_float_into_double)), legacy=legacy),
                "BUILD")
    for path, loaded in before.items():
        assert same(load_torch_checkpoint(path), loaded), path


@pytest.mark.parametrize("target", [
    global_("torch._utils", "_rebuild_parameter"),  # slot state: setattr(function, "__defaults__", ...)
    global_("collections", "OrderedDict"),
    global_("torch", "Size"),
    tensor("0", 0, (1,), (1,)),  # a tensor changed after its checks
])
def test_build_on_an_allowed_global_or_a_tensor_is_refused(tmp_path, target):
    state = pickle.NONE + mapping(("__defaults__", value((1, 2))), ("size", value((2**40,)))) + pickle.TUPLE2
    path = write(tmp_path / "build.pth", mapping(("x", target + state + pickle.BUILD)), {"0": [1.0]})
    refused(path, "BUILD")
    np.testing.assert_array_equal(load_torch_checkpoint(write(
        tmp_path / "after.pth", mapping(("w", tensor("0", 0, (2,), (1,)))), {"0": [5, 6, 7, 8]}))["w"], [5, 6])


def test_build_on_a_fresh_ordered_dict_is_what_torch_writes_and_loads(tmp_path):
    ordered = (global_("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE
               + mapping(("_metadata", pickle.EMPTY_DICT)) + pickle.BUILD
               + value("w") + tensor("0", 0, (2,), (1,)) + pickle.SETITEM)
    loaded = load_torch_checkpoint(write(tmp_path / "ordered.pth", mapping(("state_dict", ordered)),
                                         {"0": [1, 2]}))
    assert type(loaded["state_dict"]).__name__ == "OrderedDict" and list(loaded["state_dict"]) == ["w"]


# ---------------------------------------------------------------- 3. shared references, nesting, keys


def laughs(levels: int = 60) -> bytes:
    """l0 = [], l1 = [l0, l0], ... : a few hundred bytes that reach 2**levels lists."""
    ops = pickle.EMPTY_LIST + pickle.BINPUT + bytes([0]) + pickle.POP
    for i in range(1, levels + 1):
        get = pickle.BINGET + bytes([i - 1])
        ops += pickle.MARK + get + get + pickle.LIST + pickle.BINPUT + bytes([i]) + pickle.POP
    return ops + pickle.BINGET + bytes([levels])


@FORMATS
def test_billion_laughs_is_refused_quickly(tmp_path, legacy):
    path = write(tmp_path / "laughs.pth", mapping(("state_dict", laughs())), legacy=legacy)
    assert os.path.getsize(path) < 1000
    with at_most(60):
        refused(path, "container entries")


@FORMATS
def test_deep_and_circular_nesting_is_refused(tmp_path, legacy):
    deep = pickle.EMPTY_LIST * 200_000 + pickle.APPEND * 199_999
    circular = pickle.EMPTY_LIST + pickle.BINPUT + b"\x00" + pickle.BINGET + b"\x00" + pickle.APPEND
    for name, ops in (("deep", deep), ("circular", circular)):
        with at_most(60):
            refused(write(tmp_path / f"{name}.pth", mapping(("state_dict", ops)), legacy=legacy), "nested")


def test_deep_tuples_that_would_crash_python_when_hashed_are_refused(tmp_path):
    # A 200,000-deep tuple as a dict key: the unpickler hashes it and overflows the C stack (a segfault). The
    # module is loaded by its path in a fresh process, so a crash fails this test and nothing else.
    key = pickle.EMPTY_TUPLE + pickle.TUPLE1 * 200_000
    path = write(tmp_path / "tuples.pth", pickle.EMPTY_DICT + key + pickle.NONE + pickle.SETITEM)
    code = ("import importlib.util, sys\n"
            "spec = importlib.util.spec_from_file_location('reader', 'simam_paddle/models/torch_checkpoint.py')\n"
            "reader = importlib.util.module_from_spec(spec); spec.loader.exec_module(reader)\n"
            "try:\n    reader.load_torch_checkpoint(sys.argv[1])\n"
            "except reader.TorchCheckpointError as err:\n    print('refused:', err)\n")
    result = run_python(code, path, timeout=120)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.startswith("refused:") and path in result.stdout and "tuples" in result.stdout


def test_dict_keyed_by_a_tuple_is_refused(tmp_path):
    ops = pickle.EMPTY_DICT + value((1, 2)) + value(3) + pickle.SETITEM
    refused(write(tmp_path / "tuple_key.pth", mapping(("state_dict", ops))), "keyed by a tuple")


@pytest.mark.parametrize("keys", [[0, 1], ["conv1.weight", 7]], ids=["int", "mixed"])
def test_state_dict_with_int_or_mixed_keys_is_one_error_naming_it(tmp_path, capsys, keys):
    state = pickle.EMPTY_DICT + b"".join(value(k) + tensor("0", 0, (1,), (1,)) + pickle.SETITEM for k in keys)
    path = write(tmp_path / "int_keys.pth", mapping(("state_dict", state)), {"0": [1.0]})
    assert set(load_torch_checkpoint(path)["state_dict"]) == set(keys)  # the reader keeps them: optimizers do
    with pytest.raises(TorchCheckpointError) as err:
        load_official_checkpoint(path, "cifar_resnet20", "simam")
    assert path in str(err.value) and "not a parameter name" in str(err.value)
    assert main(["convert-official", path, "--model", "cifar_resnet20", "--attention", "simam",
                 "--output", str(tmp_path / "run")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "not a parameter name" in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_other_objects_the_unpickler_could_build_are_refused(tmp_path):
    bare_type = mapping(("t", global_("torch", "FloatStorage")))
    refused(write(tmp_path / "type.pth", bare_type), "object", "does not hold")
    with_args = mapping(("d", global_("collections", "OrderedDict") + value(([("a", 1)],)) + pickle.REDUCE))
    refused(write(tmp_path / "odict.pth", with_args), "OrderedDict from arguments")


# ---------------------------------------------------------------- 4. zip bombs and lying headers


def patch_declared_size(path: str, member: str, size: int) -> None:
    """Rewrite the uncompressed size the zip's central directory declares for ``member``."""
    data = bytearray(open(path, "rb").read())
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        name_length = struct.unpack("<H", data[at + 28:at + 30])[0]
        if data[at + 46:at + 46 + name_length].decode() == member:
            data[at + 24:at + 28] = struct.pack("<I", size)
            break
        at += 4
    open(path, "wb").write(bytes(data))


def test_zip_bomb_is_refused_from_the_declared_sizes(tmp_path, no_storage_read):
    path = str(tmp_path / "bomb.pth")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\x80\x02" + mapping(("w", tensor("0", 0, (1,), (1,)))) + pickle.STOP)
        z.writestr("archive/data/0", bytes(32 << 20))  # 32 MiB of zeros: a 32 KiB archive
    assert os.path.getsize(path) < 100_000
    refused(path, "declare", "uncompressed", "16x")


def test_lying_zip_headers_are_refused_before_reading(tmp_path, no_storage_read):
    path = write(tmp_path / "lying.pth", mapping(("w", tensor("0", 0, (1,), (1,)))), {"0": [1.0]})
    patch_declared_size(path, "archive/data/0", 3 << 30)  # 3 GiB
    refused(path, "declare", "3,221,225,")
    path = write(tmp_path / "lying_pickle.pth", mapping(("w", tensor("0", 0, (1,), (1,)))), {"0": [1.0]})
    patch_declared_size(path, "archive/data.pkl", 100 << 20)
    refused(path, "data.pkl", "declares 104,857,600 bytes")


def test_pickle_over_64_mib_is_refused_even_in_a_large_archive(tmp_path):
    path = write(tmp_path / "large.pth", mapping(("w", tensor("0", 0, (1,), (1,)))),
                 {"0": np.zeros(5 << 18)})  # 5 MiB stored: 80 MiB allowed by the ratio, the pickle's cap is lower
    patch_declared_size(path, "archive/data.pkl", 65 << 20)
    refused(path, "data.pkl", "67,108,864 allowed")


def test_zip_member_longer_than_declared_is_read_no_further(tmp_path):
    path = str(tmp_path / "longer.pth")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\x80\x02" + mapping(("w", tensor("0", 0, (1,), (1,)))) + pickle.STOP)
        z.writestr("archive/data/0", bytes(1 << 20))
    patch_declared_size(path, "archive/data/0", 4)  # the deflated stream still holds 1 MiB
    refused(path, "damaged zip")


# ---------------------------------------------------------------- 5. element counts against the bytes present


@FORMATS
def test_stride_zero_tensor_of_2_40_elements_is_refused_unallocated(tmp_path, no_storage_read, legacy):
    path = write(tmp_path / "huge.pth", mapping(("w", tensor("0", 0, (2**40,), (0,), legacy=legacy))),
                 {"0": [1.0]}, legacy)
    refused(path, "1,099,511,627,776 elements", "more than the 2,147,483,648")


@FORMATS
def test_many_stride_zero_views_of_one_element_are_refused_together(tmp_path, no_storage_read, legacy):
    view = tensor("0", 0, (1 << 20,), (0,), legacy=legacy)  # 4 MiB each, 20 of them from 4 bytes
    ops = pickle.EMPTY_LIST + view + pickle.BINPUT + b"\x00" + pickle.APPEND
    ops += (pickle.BINGET + b"\x00" + pickle.APPEND) * 19
    refused(write(tmp_path / "views.pth", mapping(("state_dict", ops)), {"0": [1.0]}, legacy), "4x", "elements")


def test_legacy_storage_declaring_2_61_elements_is_refused_unread(tmp_path, no_storage_read):
    path = write(tmp_path / "huge_legacy.pth", mapping(("w", tensor("0", 0, (1,), (1,), legacy=True))),
                 {"0": [1.0]}, legacy=True, numel=2**61)
    refused(path, "declares 2,305,843,009,213,693,952 elements", "4 bytes follow")


@pytest.mark.parametrize("ops, words", [
    (pickle.BINBYTES8 + struct.pack("<Q", 2**40), "bytes8"),  # a length past the end: never allocated
    (pickle.EMPTY_LIST + pickle.LONG_BINPUT + struct.pack("<I", 2**32 - 1), "memo entry 4294967295"),
])
def test_pickle_lengths_and_memo_indices_past_the_file_are_refused(tmp_path, ops, words):
    refused(write(tmp_path / "lengths.pth", mapping(("x", ops))), words)


# ---------------------------------------------------------------- the real fixtures


def test_fixtures_hold_what_their_format_says_after_hostile_files(tmp_path):
    before = {name: load_torch_checkpoint(os.path.join(DATA, name)) for name in sorted(os.listdir(DATA))
              if ".pth" in name}
    for legacy in (False, True):
        with pytest.raises(TorchCheckpointError):
            load_torch_checkpoint(write(tmp_path / f"mix{legacy}.pth", mapping(
                ("t", global_("torch", "HalfStorage") + mapping(("dtype", value("int64"))) + pickle.BUILD),
                ("l", laughs(30))), legacy=legacy))
    assert len(before) == 6
    for name, loaded in before.items():
        again = load_torch_checkpoint(os.path.join(DATA, name))
        assert same(again, loaded), name
        weights = again["state_dict"]
        conv = weights["conv1.weight" if "conv1.weight" in weights else "module.conv1.weight"]
        assert conv.dtype == np.float32 and conv.shape == (16, 3, 3, 3)


# ---------------------------------------------------------------- files that are no checkpoint


def test_non_checkpoint_files_are_refused_naming_the_path(tmp_path):
    for name, content in (("notes.pth", b"just some text\n"), ("pickle.pth", pickle.dumps({"a": 1})),
                          ("empty.pth", b"")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError) as err:
            load_torch_checkpoint(str(path))
        assert str(path) in one_line(err) and "not a PyTorch checkpoint" in one_line(err)
    zipped = tmp_path / "other.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("readme.txt", "no pickle here")
    with pytest.raises(ValueError) as err:
        load_torch_checkpoint(str(zipped))
    assert str(zipped) in one_line(err)
    with pytest.raises(FileNotFoundError):
        load_torch_checkpoint(str(tmp_path / "missing.pth"))


class _RunsACommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_pickle_calling_another_global_is_refused_and_nothing_runs(tmp_path, capsys):
    marker = tmp_path / "ran"
    payload = pickle.dumps({"state_dict": _RunsACommand(f"touch {marker}")}, protocol=2)
    plain = tmp_path / "evil.pth"
    plain.write_bytes(payload)
    zipped = tmp_path / "evil_zip.pth"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("evil_zip/data.pkl", payload)
    legacy = tmp_path / "evil_legacy.pth"  # a genuine legacy header, then the payload as the object
    legacy.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, 2) + pickle.dumps(1001, 2)
                       + pickle.dumps({"little_endian": True}, 2) + payload)
    for path in (plain, zipped, legacy):
        with pytest.raises(ValueError) as err:
            load_torch_checkpoint(str(path))
        assert "system" in one_line(err) and "refused" in one_line(err)
    assert main(["convert-official", str(zipped), "--model", "cifar_resnet20", "--attention", "simam",
                 "--output", str(tmp_path / "run")]) == 2
    assert "refused" in error_line(capsys)
    assert not marker.exists() and not (tmp_path / "run").exists()


# ---------------------------------------------------------------- the reader, on files written here


class _Storage:
    def __init__(self, key, type_name, raw, numel):
        self.key, self.type_name, self.raw, self.numel = key, type_name, raw, numel


class _Tensor:
    """What torch.save pickles for a tensor: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce_ex__(self, protocol):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())


@pytest.fixture
def fake_torch(monkeypatch):
    """Modules named torch and torch._utils, so pickle writes the globals torch.save writes."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called: the reader must not use it")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("FloatStorage", "DoubleStorage", "HalfStorage", "LongStorage", "IntStorage", "ByteStorage",
                 "BoolStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


_TYPE_OF = {"float32": "FloatStorage", "float64": "DoubleStorage", "float16": "HalfStorage", "int64": "LongStorage",
            "int32": "IntStorage", "uint8": "ByteStorage", "bool": "BoolStorage"}


def _save(obj, path, storages, legacy, byteorder="little"):
    torch = sys.modules["torch"]

    class Pickler(pickle.Pickler):
        def persistent_id(self, value):
            if isinstance(value, _Storage):
                pid = ("storage", getattr(torch, value.type_name), value.key, "cpu", value.numel)
                return pid + (None,) if legacy else pid
            return None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(obj)
    if legacy:
        with open(path, "wb") as f:
            for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": byteorder == "little"}):
                pickle.dump(header, f, protocol=2)
            f.write(buffer.getvalue())
            pickle.dump(sorted(s.key for s in storages), f, protocol=2)
            for s in sorted(storages, key=lambda s: s.key):
                f.write(struct.pack("<q" if byteorder == "little" else ">q", s.numel) + s.raw)
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", buffer.getvalue())
            z.writestr("archive/byteorder", byteorder)
            for s in storages:
                z.writestr(f"archive/data/{s.key}", s.raw)


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_reader_handles_dtypes_views_and_byte_order(fake_torch, tmp_path, legacy, byteorder):
    order = "<" if byteorder == "little" else ">"
    base = np.arange(24, dtype="float32").reshape(4, 6) / 7
    storages, expected, state = [], {}, collections.OrderedDict()

    def storage(key, flat):
        raw = flat.astype(flat.dtype.newbyteorder(order)).tobytes()
        s = _Storage(key, _TYPE_OF[flat.dtype.name], raw, flat.size)
        storages.append(s)
        return s

    shared = storage("0", base.ravel())
    state["transposed"], expected["transposed"] = _Tensor(shared, 0, (6, 4), (1, 6)), base.T
    state["window"], expected["window"] = _Tensor(shared, 7, (2, 3), (6, 1)), base[1:3, 1:4]
    for i, dtype in enumerate(["float64", "float16", "int64", "int32", "uint8", "bool"]):
        array = (np.arange(12) % 5).astype(dtype).reshape(3, 4)
        state[dtype], expected[dtype] = _Tensor(storage(str(i + 1), array.ravel()), 0, (3, 4), (4, 1)), array
    state["scalar"], expected["scalar"] = _Tensor(storage("9", np.array([123], "int64")), 0, (), ()), np.array(123)
    path = tmp_path / "written.pth"
    _save({"epoch": 3, "state_dict": state, "nested": {"list": [1, "a"]}}, path, storages, legacy, byteorder)

    loaded = load_torch_checkpoint(str(path))
    assert loaded["epoch"] == 3 and loaded["nested"] == {"list": [1, "a"]}
    assert list(loaded["state_dict"]) == list(expected)
    for key, want in expected.items():
        got = loaded["state_dict"][key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        np.testing.assert_array_equal(got, want)
        assert got.flags["C_CONTIGUOUS"] and got.flags["WRITEABLE"]


def test_reader_refuses_a_tensor_past_its_storage(fake_torch, tmp_path):
    s = _Storage("0", "FloatStorage", np.zeros(4, "float32").tobytes(), 4)
    _save({"w": _Tensor(s, 2, (2, 2), (2, 1))}, tmp_path / "bad.pth", [s], legacy=False)
    with pytest.raises(ValueError) as err:
        load_torch_checkpoint(str(tmp_path / "bad.pth"))
    assert "reaches past its storage" in one_line(err)


def test_fixture_formats_hold_the_same_tensors():
    zipped = load_torch_checkpoint(os.path.join(DATA, "official_cifar_resnet20_simam.pth.tar"))
    legacy = load_torch_checkpoint(os.path.join(DATA, "official_cifar_resnet20_simam_legacy.pth.tar"))
    release = load_torch_checkpoint(os.path.join(DATA, "official_cifar_resnet20_simam_release_style.pth"))
    assert zipped["arch"] == legacy["arch"] == "resnet20" and list(release) == ["state_dict"]
    assert list(zipped["state_dict"]) == list(legacy["state_dict"])
    assert [f"module.{k}" for k in zipped["state_dict"]] == list(release["state_dict"])
    for key, value in zipped["state_dict"].items():
        np.testing.assert_array_equal(value, legacy["state_dict"][key])
    assert zipped["state_dict"]["bn1.num_batches_tracked"].shape == ()
