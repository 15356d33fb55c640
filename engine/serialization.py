"""engine.save / engine.load: checkpoints as safetensors plus JSON structure (never pickle).

File format (what `engine.save` writes): a safetensors file.  Its tensors are the distinct storages
of the saved object (a tensor that owns its whole storage is stored with its own shape and, inside a
state_dict, under its own key, so other safetensors readers see ordinary named tensors); its
`__metadata__` holds
    "format": "clgrad", "clgrad": JSON {"version": 1, "tensors": [...], "obj": <node>}
where every tensor is {"blob", "dtype", "shape", "stride", "offset", "rg", "param"[, "np"]} (views
and tied weights point into the same blob, so they stay tied after load) and a node is a JSON
scalar, a JSON list (Python list) or a tagged object {"T": tag, ...} for tensors, tuples,
(ordered) dicts with any keys, dtypes, sizes, devices, bytes, sets, complex and non-finite floats.
Nothing is ever executed on load.

`engine.load` also reads
  * safetensors files written by PyTorch / Hugging Face (no clgrad metadata): a dict name → tensor;
  * `torch.save` zip archives (.pt/.pth) without torch: a restricted unpickler that only knows
    tensor/parameter rebuild functions, storage types, OrderedDict, torch dtypes/Size and plain
    builtins, and refuses every other global with pickle.UnpicklingError.
Writes to a path are atomic (temp file in the same directory, fsync, os.replace).
"""
import base64
import collections
import io
import json
import math
import os
import pickle
import struct
import tempfile
import zipfile

import numpy as np

__all__ = ["save", "load"]

_FORMAT_VERSION = 1


def _lazy():
    from . import dtypes as D
    from .tensor import Tensor, Size, make, from_numpy_array, to_numpy
    return D, Tensor, Size, make, from_numpy_array, to_numpy


# ---------------------------------------------------------------------------------------- save
class _Encoder:
    def __init__(self):
        D, Tensor, Size, make, _, to_numpy = _lazy()
        self.D, self.Tensor, self.Size, self.make, self.to_numpy = D, Tensor, Size, make, to_numpy
        self.tensor_ids = {}     # id(tensor) -> index into self.tensors
        self.tensors = []        # metadata dicts
        self.keep = []           # keep objects alive so ids stay unique
        self.groups = collections.OrderedDict()  # id(storage) -> [(index, tensor, path)]
        self.np_arrays = {}      # blob name -> contiguous numpy array (numpy inputs)
        self.names = set()

    def _name(self, path):
        base = ".".join(str(p) for p in path) or "tensor"
        if base == "__metadata__":
            base = "_" + base
        name, k = base, 1
        while name in self.names:
            name, k = f"{base}.{k}", k + 1
        self.names.add(name)
        return name

    def enc(self, o, path=()):
        if o is None or isinstance(o, (bool, str)):
            return o
        if isinstance(o, int) and type(o) in (int,):
            return o
        if isinstance(o, float) and type(o) is float:
            if math.isfinite(o):
                return o
            return {"T": "float", "v": repr(o)}
        if isinstance(o, self.Tensor):
            return {"T": "tensor", "i": self._tensor(o, path)}
        if isinstance(o, self.D.dtype):
            return {"T": "dtype", "v": o.name if hasattr(o, "name") else str(o).split(".")[-1]}
        if isinstance(o, self.Size):
            return {"T": "size", "v": [int(s) for s in o]}
        from .device import device as _device
        if isinstance(o, _device):
            return {"T": "device", "v": str(o)}
        if isinstance(o, np.ndarray):
            return {"T": "tensor", "i": self._ndarray(o, path)}
        if isinstance(o, np.generic):
            return self.enc(o.item(), path)
        if isinstance(o, bool) or isinstance(o, int):  # int subclasses (IntEnum...) as plain ints
            return int(o)
        if isinstance(o, float):
            return self.enc(float(o), path)
        if isinstance(o, complex):
            return {"T": "complex", "v": [repr(o.real), repr(o.imag)]}
        if isinstance(o, (bytes, bytearray)):
            return {"T": "bytes" if isinstance(o, bytes) else "bytearray", "v": base64.b64encode(bytes(o)).decode()}
        if isinstance(o, tuple):
            items = [self.enc(v, path + (i,)) for i, v in enumerate(o)]
            if hasattr(o, "_fields"):
                return {"T": "namedtuple", "name": type(o).__name__, "fields": list(o._fields), "v": items}
            return {"T": "tuple", "v": items}
        if isinstance(o, list):
            return [self.enc(v, path + (i,)) for i, v in enumerate(o)]
        if isinstance(o, (set, frozenset)):
            return {"T": "set" if isinstance(o, set) else "frozenset", "v": [self.enc(v, path) for v in o]}
        if isinstance(o, dict):
            tag = "odict" if isinstance(o, collections.OrderedDict) else "dict"
            node = {"T": tag}
            if all(type(k) is str for k in o):
                node["o"] = {k: self.enc(v, path + (k,)) for k, v in o.items()}
            else:
                node["k"] = [self.enc(k, path) for k in o]
                node["v"] = [self.enc(v, path + (k,)) for k, v in o.items()]
            meta = getattr(o, "_metadata", None)
            if meta is not None:
                node["meta"] = self.enc(meta, path)
            return node
        if isinstance(o, range):
            return {"T": "range", "v": [o.start, o.stop, o.step]}
        if isinstance(o, slice):
            return {"T": "slice", "v": [self.enc(o.start), self.enc(o.stop), self.enc(o.step)]}
        raise TypeError(f"engine.save: can't save an object of type {type(o).__module__}.{type(o).__qualname__} "
                        f"(at {'.'.join(map(str, path)) or 'top level'}): only tensors, numpy arrays, dicts, "
                        f"lists, tuples, sets, numbers, strings, bytes, None, dtypes, sizes and devices are "
                        f"supported (clgrad checkpoints never pickle objects; save a state_dict())")

    def _tensor(self, t, path):
        k = self.tensor_ids.get(id(t))
        if k is not None:
            return k
        from .nn.parameter import Parameter
        k = len(self.tensors)
        self.tensor_ids[id(t)] = k
        self.keep.append(t)
        meta = {"dtype": t.dtype.name, "shape": list(t._shape), "stride": list(t._strides), "offset": t._offset,
                "rg": bool(t.requires_grad), "param": isinstance(t, Parameter), "dev": str(t.device)}
        self.tensors.append(meta)
        self.groups.setdefault(id(t._storage), []).append((k, t, path))
        return k

    def _ndarray(self, a, path):
        k = len(self.tensors)
        if a.dtype.kind not in "biuf" or a.dtype.itemsize > 8:
            raise TypeError(f"engine.save: numpy arrays of dtype {a.dtype} are not supported")
        arr = np.ascontiguousarray(a)
        name = self._name(path)
        self.np_arrays[name] = arr
        self.tensors.append({"blob": name, "dtype": str(arr.dtype), "shape": list(arr.shape),
                             "stride": [s // arr.itemsize for s in arr.strides] if arr.size else [1] * arr.ndim,
                             "offset": 0, "rg": False, "param": False, "np": True})
        return k

    def blobs(self):
        """name -> numpy array for each storage (tied tensors share one)."""
        out = dict(self.np_arrays)
        for _, members in self.groups.items():
            dts = {t.dtype for _, t, _ in members}
            if len(dts) > 1:  # storage reinterpreted with several dtypes: save each tensor on its own
                for k, t, path in members:
                    name = self._name(path)
                    out[name] = self.to_numpy(t)
                    m = self.tensors[k]
                    m.update(blob=name, offset=0, stride=_contig_strides(t._shape))
                continue
            neg = [(k, t, path) for k, t, path in members if t.numel() and any(s < 0 for s in t._strides)]
            for k, t, path in neg:  # negative-stride views: saved as their own contiguous copy
                name = self._name(path)
                out[name] = self.to_numpy(t)
                self.tensors[k].update(blob=name, offset=0, stride=_contig_strides(t._shape))
            members = [m for m in members if not any(m[0] == n[0] for n in neg)]
            if not members:
                continue
            dtype = members[0][1].dtype
            hi = 0
            for _, t, _ in members:
                if t.numel() == 0:
                    continue
                hi = max(hi, t._offset + sum((n - 1) * s for n, s in zip(t._shape, t._strides)) + 1)
            k0, t0, path0 = members[0]
            name = self._name(path0)
            whole = (len(members) == 1 and t0._offset == 0 and t0.is_contiguous() and t0.numel() == hi)
            if whole:
                arr = self.to_numpy(t0)
            else:
                flat = self.make(t0._storage, (hi,), (1,), 0, dtype)
                arr = self.to_numpy(flat) if hi else np.empty((0,), dtype=dtype.np)
            out[name] = arr
            for k, _, _ in members:
                self.tensors[k]["blob"] = name
        return out


def _contig_strides(shape):
    st, acc = [], 1
    for n in reversed(shape):
        st.append(acc)
        acc *= max(n, 1)
    return st[::-1]


def _fsync_dir(d):
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False):
    """Save tensors / state_dicts / nested containers to `f` (a path or a writable binary file)
    as safetensors + JSON structure.  Saving to a path is atomic: a crash mid-save leaves the
    previous file intact."""
    from safetensors.numpy import save as st_save, save_file as st_save_file
    e = _Encoder()
    node = e.enc(obj)
    blobs = e.blobs()
    meta = {"format": "clgrad",
            "clgrad": json.dumps({"version": _FORMAT_VERSION, "tensors": e.tensors, "obj": node},
                                 separators=(",", ":"))}
    if isinstance(f, (str, bytes, os.PathLike)):
        path = os.fspath(f)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        d = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(d):
            raise RuntimeError(f"Parent directory {d} does not exist.")
        fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
        os.close(fd)
        try:
            st_save_file(blobs, tmp, metadata=meta)
            with open(tmp, "rb+") as fh:
                fh.flush()
                os.fsync(fh.fileno())
            try:
                mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o666 & ~_umask()
                os.chmod(tmp, mode)
            except OSError:
                pass
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _fsync_dir(d)
        return
    if not hasattr(f, "write"):
        raise TypeError(f"engine.save: f must be a path or a writable binary file object, got {type(f).__name__}")
    f.write(st_save(blobs, metadata=meta))
    if hasattr(f, "flush"):
        f.flush()


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


# ---------------------------------------------------------------------------------------- load
class _LoadError(RuntimeError):
    pass


def _target_device(map_location, saved):
    """A runtime Device for a tensor saved on `saved` (a string) under `map_location`."""
    from .device import device as _device, resolve
    ml = map_location
    if ml is None:
        return resolve(None)
    if isinstance(ml, dict):
        ml = ml.get(saved, ml.get(str(saved).split(":")[0]))
        if ml is None:
            return resolve(None)
    elif callable(ml) and not isinstance(ml, (str, _device)):
        r = ml(None, saved)
        ml = r if isinstance(r, (str, _device)) else None
    try:
        return resolve(ml)
    except (RuntimeError, ValueError, TypeError):
        if isinstance(ml, str) and ml.split(":")[0] in ("cpu", "cuda", "meta", "mps"):
            return resolve(None)
        raise


def _read_all(f):
    if isinstance(f, (str, bytes, os.PathLike)):
        path = os.fspath(f)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        try:
            with open(path, "rb") as fh:
                return fh.read(), path
        except FileNotFoundError:
            raise FileNotFoundError(f"[Errno 2] No such file or directory: '{path}'") from None
    if not hasattr(f, "read"):
        raise TypeError(f"engine.load: f must be a path or a readable binary file object, got {type(f).__name__}")
    data = f.read()
    if isinstance(data, str):
        raise TypeError("engine.load: the file object must be opened in binary mode ('rb')")
    return bytes(data), getattr(f, "name", "<file object>")


def load(f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None, **pickle_load_args):
    """Load what `engine.save` wrote, a safetensors file (→ dict name → tensor) or a `torch.save`
    zip archive (restricted unpickler: no code runs).  Tensors go to `map_location` (None, a device
    string, an engine.device, a dict saved-location → location, or a callable)."""
    data, path = _read_all(f)
    if len(data) == 0:
        raise RuntimeError(f"engine.load: {path}: the file is empty")
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        return _load_torch_zip(data, path, map_location)
    if data[:1] == b"\x80" and len(data) > 1 and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise RuntimeError(f"engine.load: {path}: this is a legacy (non-zip) torch.save file, which is not "
                           f"supported (it can't be read without running pickled code); re-save it with a recent "
                           f"PyTorch (torch.save(obj, f) writes the zip format) or as safetensors")
    return _load_safetensors(data, path, map_location)


def _parse_st_header(data, path):
    if len(data) < 8:
        raise RuntimeError(f"engine.load: {path}: not a clgrad/safetensors/PyTorch file, or truncated "
                           f"({len(data)} bytes; a safetensors file starts with an 8-byte header length)")
    (n,) = struct.unpack("<Q", data[:8])
    if data[8:9] != b"{":
        raise RuntimeError(f"engine.load: {path}: unrecognised file format (neither safetensors, a clgrad "
                           f"checkpoint nor a torch.save zip archive)")
    if n > len(data) - 8:
        raise RuntimeError(f"engine.load: {path}: truncated safetensors file: the header says {n} bytes but only "
                           f"{len(data) - 8} bytes follow")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as ex:
        raise RuntimeError(f"engine.load: {path}: corrupt safetensors header ({ex})") from None
    if not isinstance(header, dict):
        raise RuntimeError(f"engine.load: {path}: corrupt safetensors header (not a JSON object)")
    end = 0
    for k, v in header.items():
        if k == "__metadata__":
            continue
        try:
            end = max(end, int(v["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            raise RuntimeError(f"engine.load: {path}: corrupt safetensors header (entry {k!r})") from None
    if 8 + n + end > len(data):
        raise RuntimeError(f"engine.load: {path}: truncated file: the tensor data needs {end} bytes but only "
                           f"{len(data) - 8 - n} are there")
    return header


_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
              "U8": "u1", "BOOL": "?", "BF16": "<u2"}


def _st_load_manual(data, header, path):
    """Decode a safetensors payload by hand (for dtypes safetensors.numpy lacks: BF16 → float32)."""
    (n,) = struct.unpack("<Q", data[:8])
    body = memoryview(data)[8 + n:]
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        code = _ST_DTYPES.get(v.get("dtype"))
        if code is None:
            raise _LoadError(f"engine.load: {path}: tensor {k!r} has unsupported dtype {v.get('dtype')!r}")
        b, e = (int(x) for x in v["data_offsets"])
        shape = tuple(int(x) for x in v["shape"])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not 0 <= b <= e <= len(body) or e - b != count * np.dtype(code).itemsize:
            raise _LoadError(f"engine.load: {path}: tensor {k!r}: data_offsets {[b, e]} don't match shape "
                             f"{list(shape)} and dtype {v.get('dtype')}")
        arr = np.frombuffer(body[b:e], dtype=code).reshape(shape)
        if v["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[k] = arr.copy()
    return out


def _load_safetensors(data, path, map_location):
    from safetensors.numpy import load as st_load
    header = _parse_st_header(data, path)
    meta = header.get("__metadata__") or {}
    try:
        if any(isinstance(v, dict) and v.get("dtype") == "BF16" for v in header.values()):
            arrays = _st_load_manual(data, header, path)
        else:
            arrays = st_load(data)
    except _LoadError:
        raise
    except Exception as ex:  # SafetensorError, unsupported dtypes, ...
        raise RuntimeError(f"engine.load: {path}: can't read the safetensors data: {ex}") from None
    D, Tensor, Size, make, from_numpy_array, _ = _lazy()
    if meta.get("format") != "clgrad" or "clgrad" not in meta:
        # a plain safetensors file (PyTorch / Hugging Face): dict name -> tensor, in file order
        dev = _target_device(map_location, "cpu")
        order = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])
        return {k: from_numpy_array(arrays[k], dev) for k in order}
    try:
        spec = json.loads(meta["clgrad"])
        if spec.get("version", 0) > _FORMAT_VERSION:
            raise RuntimeError(f"engine.load: {path}: written by a newer clgrad (format {spec['version']})")
        return _Decoder(spec, arrays, map_location, path).dec(spec["obj"])
    except _LoadError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as ex:
        raise RuntimeError(f"engine.load: {path}: corrupt clgrad metadata ({type(ex).__name__}: {ex})") from None


class _Decoder:
    def __init__(self, spec, arrays, map_location, path):
        self.D, self.Tensor, self.Size, self.make, self.from_numpy_array, _ = _lazy()
        self.spec, self.arrays, self.ml, self.path = spec, arrays, map_location, path
        self.blob_tensors = {}
        self.memo = {}

    def _blob(self, name, dtype, dev):
        key = (name, dev.index if hasattr(dev, "index") else id(dev))
        t = self.blob_tensors.get(key)
        if t is None:
            if name not in self.arrays:
                raise _LoadError(f"engine.load: {self.path}: tensor data {name!r} is missing from the file")
            arr = self.arrays[name].reshape(-1)
            if arr.dtype != dtype.np:
                raise _LoadError(f"engine.load: {self.path}: tensor data {name!r} has dtype {arr.dtype}, "
                                 f"the metadata says {dtype.name}")
            t = self.blob_tensors[key] = self.from_numpy_array(arr, dev, dtype)
        return t

    def _tensor(self, i):
        if i in self.memo:
            return self.memo[i]
        m = self.spec["tensors"][i]
        shape, stride, off = tuple(int(s) for s in m["shape"]), tuple(int(s) for s in m["stride"]), int(m["offset"])
        if len(shape) != len(stride) or any(s < 0 for s in shape) or any(s < 0 for s in stride) or off < 0:
            raise _LoadError(f"engine.load: {self.path}: corrupt tensor metadata {m}")
        if m.get("np"):
            arr = self.arrays[m["blob"]]
            r = arr.reshape(shape)
            self.memo[i] = r
            return r
        dtype = getattr(self.D, m["dtype"], None) if m["dtype"] != "bool" else self.D.bool_
        if not isinstance(dtype, self.D.dtype):
            raise _LoadError(f"engine.load: {self.path}: unknown dtype {m['dtype']!r}")
        dev = _target_device(self.ml, m.get("dev", "cpu"))
        base = self._blob(m["blob"], dtype, dev)
        n = base.numel()
        if 0 not in shape and off + sum((a - 1) * s for a, s in zip(shape, stride)) >= n:
            raise _LoadError(f"engine.load: {self.path}: tensor of shape {list(shape)} reaches past the end of its "
                             f"data ({n} elements)")
        t = self.make(base._storage, shape, stride, off, dtype)
        if m.get("param"):
            from .nn.parameter import Parameter
            t = Parameter(t, requires_grad=bool(m.get("rg")))
        elif m.get("rg"):
            t.requires_grad_(True)
        self.memo[i] = t
        return t

    def dec(self, n):
        if n is None or isinstance(n, (bool, int, float, str)):
            return n
        if isinstance(n, list):
            return [self.dec(v) for v in n]
        tag = n["T"]
        if tag == "tensor":
            return self._tensor(int(n["i"]))
        if tag in ("dict", "odict"):
            d = collections.OrderedDict() if tag == "odict" else {}
            if "o" in n:
                for k, v in n["o"].items():
                    d[k] = self.dec(v)
            else:
                for k, v in zip(n["k"], n["v"]):
                    d[self.dec(k)] = self.dec(v)
            if "meta" in n and tag == "odict":
                d._metadata = self.dec(n["meta"])
            return d
        if tag == "tuple":
            return tuple(self.dec(v) for v in n["v"])
        if tag == "namedtuple":
            cls = collections.namedtuple(str(n["name"]), [str(x) for x in n["fields"]])
            return cls(*(self.dec(v) for v in n["v"]))
        if tag == "float":
            return float(n["v"])
        if tag == "complex":
            return complex(float(n["v"][0]), float(n["v"][1]))
        if tag == "dtype":
            name = n["v"]
            dt = self.D.bool_ if name == "bool" else getattr(self.D, name, None)
            if not isinstance(dt, self.D.dtype):
                raise _LoadError(f"engine.load: {self.path}: unknown dtype {name!r}")
            return dt
        if tag == "size":
            return self.Size(int(s) for s in n["v"])
        if tag == "device":
            from .device import device as _device
            try:
                return _device(n["v"])
            except RuntimeError:
                return _device(_target_device(self.ml, n["v"]))
        if tag == "bytes":
            return base64.b64decode(n["v"])
        if tag == "bytearray":
            return bytearray(base64.b64decode(n["v"]))
        if tag == "set":
            return {self.dec(v) for v in n["v"]}
        if tag == "frozenset":
            return frozenset(self.dec(v) for v in n["v"])
        if tag == "range":
            return range(*[int(v) for v in n["v"]])
        if tag == "slice":
            return slice(*[self.dec(v) for v in n["v"]])
        raise _LoadError(f"engine.load: {self.path}: unknown node type {tag!r} in clgrad metadata")


# ------------------------------------------------------------------------- torch.save zip archives
_TORCH_STORAGES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16", "LongStorage": "int64",
    "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "BFloat16Storage": "bfloat16", "UntypedStorage": "uint8",
}
_NP = {"float32": "f4", "float64": "f8", "float16": "f2", "int64": "i8", "int32": "i4", "int16": "i2",
       "int8": "i1", "uint8": "u1", "bool": "?", "bfloat16": "u2"}
_TORCH_DTYPES = {"float32": "float32", "float": "float32", "float64": "float64", "double": "float64",
                 "float16": "float16", "half": "float16", "int64": "int64", "long": "int64", "int32": "int32",
                 "int": "int32", "int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8",
                 "bool": "bool"}


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _TORCH_STORAGES[name]


class _TorchStorage:
    """One storage of the archive: its numpy data and, once needed, its engine tensor."""

    def __init__(self, arr, dtype_name, location):
        self.arr, self.dtype_name, self.location = arr, dtype_name, location
        self.tensor = None


class _TorchUnpickler(pickle.Unpickler):
    def __init__(self, fh, loader):
        super().__init__(fh)
        self.loader = loader

    def find_class(self, module, name):
        D, _, Size, _, _, _ = _lazy()
        L = self.loader
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return L.rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return L.rebuild_parameter
        if module == "torch._utils" and name == "_rebuild_parameter_with_state":
            return L.rebuild_parameter_with_state
        if module == "torch" and name in _TORCH_STORAGES or module == "torch.storage" and name == "UntypedStorage":
            return _StorageType(name)
        if module == "torch" and name in _TORCH_DTYPES:
            return getattr(D, _TORCH_DTYPES[name]) if name != "bool" else D.bool_
        if module == "torch" and name == "Size":
            return Size
        if module == "torch" and name == "device":
            return _torch_device
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "builtins" and name in ("set", "frozenset", "complex", "bytearray", "slice", "tuple", "list",
                                             "dict", "range"):
            return getattr(__import__("builtins"), name)
        if module == "_codecs" and name == "encode":
            return _codecs_encode
        raise pickle.UnpicklingError(
            f"engine.load: {L.path}: refusing to load global '{module}.{name}': only tensors, storages, "
            f"OrderedDict and plain containers can be loaded from a PyTorch file (no code is run)")

    def persistent_load(self, pid):
        return self.loader.storage(pid)


def _codecs_encode(s, encoding="utf-8"):
    if not isinstance(s, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise pickle.UnpicklingError(f"engine.load: unexpected _codecs.encode({type(s).__name__}, {encoding!r})")
    return s.encode(encoding)


def _torch_device(spec, index=None):
    return spec if index is None else f"{spec}:{index}"


class _TorchZipLoader:
    def __init__(self, zf, prefix, path, map_location):
        self.zf, self.prefix, self.path, self.ml = zf, prefix, path, map_location
        self.storages = {}
        self.big = False
        try:
            bo = zf.read(prefix + "byteorder").decode().strip()
            self.big = bo == "big"
        except KeyError:
            pass

    def err(self, msg):
        return _LoadError(f"engine.load: {self.path}: {msg}")

    def storage(self, pid):
        if not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage" or not isinstance(pid[1], _StorageType):
            raise pickle.UnpicklingError(f"engine.load: {self.path}: unsupported persistent id {pid!r:.200}")
        _, stype, key, location, numel = pid
        key = str(key)
        if key in self.storages:
            return self.storages[key]
        try:
            raw = self.zf.read(self.prefix + "data/" + key)
        except KeyError:
            raise self.err(f"storage data/{key} is missing from the archive") from None
        np_code = _NP[stype.dtype]
        itemsize = np.dtype(np_code).itemsize
        numel = int(numel)
        if stype.name == "UntypedStorage":
            numel = len(raw) if numel is None else numel
        if len(raw) < numel * itemsize:
            raise self.err(f"storage data/{key} holds {len(raw)} bytes, expected {numel * itemsize} "
                           f"({numel} x {stype.dtype}): truncated or corrupt")
        arr = np.frombuffer(raw, dtype=(">" if self.big else "<") + np_code if itemsize > 1 else np_code,
                            count=numel)
        if stype.dtype == "bfloat16":  # engine has no bfloat16: widen to float32 exactly
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
            st = _TorchStorage(arr, "float32", location)
        else:
            st = _TorchStorage(arr, stype.dtype, location)
        self.storages[key] = st
        return st

    def rebuild_tensor(self, storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
        D, _, _, make, from_numpy_array, _ = _lazy()
        if not isinstance(storage, _TorchStorage):
            raise pickle.UnpicklingError(f"engine.load: {self.path}: _rebuild_tensor_v2 expects a storage")
        size, stride, off = tuple(int(s) for s in size), tuple(int(s) for s in stride), int(storage_offset)
        n = storage.arr.size
        if len(size) != len(stride) or off < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
            raise self.err(f"bad tensor layout: size {list(size)}, stride {list(stride)}, offset {off}")
        if 0 not in size and off + sum((a - 1) * s for a, s in zip(size, stride)) >= n:
            raise self.err(f"tensor of size {list(size)} (stride {list(stride)}, offset {off}) reaches past the end "
                           f"of its storage of {n} elements")
        dtype = D.bool_ if storage.dtype_name == "bool" else getattr(D, storage.dtype_name)
        if storage.tensor is None:
            dev = _target_device(self.ml, storage.location)
            storage.tensor = from_numpy_array(storage.arr, dev, dtype)
        t = make(storage.tensor._storage, size, stride, off, dtype)
        if requires_grad:
            t.requires_grad_(True)
        return t

    def rebuild_parameter(self, data, requires_grad, backward_hooks=None):
        from .nn.parameter import Parameter
        return Parameter(data, requires_grad=bool(requires_grad))

    def rebuild_parameter_with_state(self, data, requires_grad, backward_hooks, state):
        return self.rebuild_parameter(data, requires_grad)


def _load_torch_zip(data, path, map_location):
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = zf.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as ex:
        raise RuntimeError(f"engine.load: {path}: corrupt or truncated PyTorch zip archive ({ex})") from None
    pkls = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if not pkls:
        if any(n.endswith("constants.pkl") for n in names):
            raise RuntimeError(f"engine.load: {path}: this is a TorchScript archive, not a torch.save checkpoint")
        raise RuntimeError(f"engine.load: {path}: zip archive without data.pkl: not a torch.save checkpoint")
    prefix = pkls[0][: -len("data.pkl")]
    loader = _TorchZipLoader(zf, prefix, path, map_location)
    try:
        pkl = zf.read(pkls[0])
        obj = _TorchUnpickler(io.BytesIO(pkl), loader).load()
        _check_tensors(obj, path)
        return obj
    except _LoadError:
        raise
    except pickle.UnpicklingError as ex:
        if str(ex).startswith("engine.load:"):  # our refusals
            raise
        raise RuntimeError(f"engine.load: {path}: corrupt pickle in the PyTorch archive ({ex})") from None
    except (zipfile.BadZipFile, EOFError, struct.error, zlib_error(), OSError) as ex:
        raise RuntimeError(f"engine.load: {path}: corrupt or truncated PyTorch archive ({type(ex).__name__}: "
                           f"{ex})") from None
    except (TypeError, ValueError, AttributeError, IndexError, KeyError) as ex:
        raise RuntimeError(f"engine.load: {path}: unexpected content in the PyTorch archive "
                           f"({type(ex).__name__}: {ex})") from None


def _check_tensors(obj, path, depth=0):
    """Pickle BUILD opcodes can overwrite instance attributes: make sure every loaded tensor still
    describes memory inside its storage (so nothing reads out of bounds later)."""
    D, Tensor, Size, _, _, _ = _lazy()
    if depth > 200:
        return
    if isinstance(obj, Tensor):
        from .runtime.memory import Storage
        ok = (isinstance(obj._storage, Storage) and isinstance(obj._shape, Size) and isinstance(obj._strides, tuple)
              and type(obj._offset) is int and isinstance(obj.dtype, D.dtype) and len(obj._shape) == len(obj._strides)
              and all(type(v) is int and v >= 0 for v in (*obj._shape, *obj._strides)))
        if ok and obj.numel():
            hi = obj._offset + sum((n - 1) * st for n, st in zip(obj._shape, obj._strides)) + 1
            ok = obj._offset >= 0 and hi * obj.dtype.itemsize <= obj._storage.size
        if not ok:
            raise _LoadError(f"engine.load: {path}: a tensor in the archive has an inconsistent layout (tampered?)")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_tensors(k, path, depth + 1)
            _check_tensors(v, path, depth + 1)
        for v in getattr(obj, "__dict__", {}).values():
            _check_tensors(v, path, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            _check_tensors(v, path, depth + 1)


def zlib_error():
    import zlib
    return zlib.error
