"""checkpoints: small checkpoint files for the TypeScript checkpoint readers (src/checkpoints/), written by torch and
safetensors themselves, with what their own readers (safetensors.torch.load_file, torch.load(weights_only=True)) get
back from them. Nothing here is model-specific. Writes into `out`:

  safetensors/model.safetensors      every dtype the readers convert (f32, f16, bf16, f64, i64, i32, i16, i8, u8,
                                     bool), half and bfloat16 specials (inf, nan, -0, subnormals), a 0-d scalar, an
                                     empty tensor
  pytorch/pytorch_model.bin          torch.save of the same dtypes plus views: two tensors sharing one storage (one at
                                     a storage offset), a transposed view, a stride-0 expanded view, a Parameter
  state-dict/pytorch_model.bin       torch.save(module.state_dict()): an OrderedDict with `_metadata` (BUILD)
  sharded-safetensors/               transformers' save_pretrained(max_shard_size=...): shards + index
  sharded-pytorch/                   pytorch_model-0000N-of-00002.bin + pytorch_model.bin.index.json, as transformers
                                     4.x wrote them
  bigendian/pytorch_model.bin        the pytorch/ tensors in a zip written by Python's zipfile (no alignment
                                     padding) with byteorder "big" and byte-swapped storages
  legacy/pytorch_model.bin           torch.save(..., _use_new_zipfile_serialization=False)
  bad/unknown-dtype.safetensors      a float8_e4m3fn tensor beside a float32 one
  bad/unknown-dtype-uint16.bin       torch.save of a uint16 tensor (_rebuild_tensor_v3 + UntypedStorage + torch.uint16)
  bad/unknown-dtype-complex.bin      torch.save of a complex64 tensor (torch.ComplexFloatStorage)
  forbidden/<name>.bin               zips whose data.pkl is written opcode by opcode and names a forbidden global
                                     (builtins.eval, os.system, posix.system, subprocess.check_output via INST,
                                     os.system via STACK_GLOBAL, one after valid tensors); never unpickled here
  expected.json                      per good file its format, keys in file order, and per tensor shape, source
                                     dtype, output dtype and values (floats as float32 values, "NaN"/"Infinity"/
                                     "-Infinity" for the specials; int64 as decimal strings); per bad file the
                                     reason, and the key or global it must name
"""

import collections
import json
import math
import os
import struct
import zipfile

SEED = 20250612

OUTPUT_DTYPE = {"float32": "float32", "float16": "float32", "bfloat16": "float32", "float64": "float32", "int64": "int64",
                "int32": "int32", "int16": "int32", "int8": "int32", "uint8": "uint8", "bool": "bool"}


def dtype_name(tensor):
    return str(tensor.dtype).replace("torch.", "")


def encode_value(value, dtype):
    if dtype == "int64":
        return str(int(value))
    if dtype == "bool":
        return 1 if value else 0
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
    return value


def describe(tensor):
    import torch

    source = dtype_name(tensor)
    output = OUTPUT_DTYPE[source]
    converted = tensor.to(torch.float32) if output == "float32" else tensor
    values = converted.contiguous().reshape(-1).tolist()
    return {"shape": list(tensor.shape), "sourceDtype": source, "dtype": output,
            "values": [encode_value(value, source if output != "float32" else "float32") for value in values]}


def describe_all(state, keys=None):
    return {"keys": list(keys if keys is not None else state.keys()), "tensors": {key: describe(state[key]) for key in state}}


def dtype_tensors(generator):
    import torch

    half_specials = [float("inf"), float("-inf"), float("nan"), -0.0, 2.0 ** -24, 65504.0, -1.5, 1e-3]
    return collections.OrderedDict([
        ("f32", torch.randn(2, 3, generator=generator)),
        ("f16", torch.tensor(half_specials, dtype=torch.float16)),
        ("f16_matrix", torch.randn(3, 4, generator=generator).to(torch.float16)),
        ("bf16", torch.tensor(half_specials[:5] + [3.0e38, -1.5, 1e-3], dtype=torch.bfloat16)),
        ("bf16_matrix", torch.randn(4, 2, generator=generator).to(torch.bfloat16)),
        ("f64", torch.tensor([1.0 / 3.0, -2.5e-40, 1e300, 0.1], dtype=torch.float64)),
        ("i64", torch.tensor([0, -1, 2 ** 62 + 1, -(2 ** 63), 2 ** 63 - 1], dtype=torch.int64)),
        ("i32", torch.tensor([-(2 ** 31), 2 ** 31 - 1, 7], dtype=torch.int32)),
        ("i16", torch.tensor([-32768, 32767, -2], dtype=torch.int16)),
        ("i8", torch.tensor([-128, 127, -3], dtype=torch.int8)),
        ("u8", torch.tensor([0, 255, 17], dtype=torch.uint8)),
        ("flags", torch.tensor([True, False, True, True], dtype=torch.bool)),
        ("scalar", torch.tensor(2.75)),
        ("empty", torch.zeros(0, 3)),
        ("rank4", torch.randn(2, 1, 3, 2, generator=generator)),
    ])


def view_tensors(generator):
    import torch

    base = torch.randn(20, generator=generator)
    matrix = torch.randn(3, 5, generator=generator)
    return collections.OrderedDict([
        ("shared.first", base[:6].view(2, 3)),            # storage offset 0
        ("shared.second", base[8:20].view(3, 4)),         # the same storage, offset 8
        ("transposed", matrix.t()),                        # strides (1, 5)
        ("column", matrix[:, 2]),                          # offset 2, stride 5
        ("expanded", torch.randn(1, 3, generator=generator).expand(4, 3)),  # stride 0
        ("half_transposed", torch.randn(2, 3, generator=generator).to(torch.float16).t()),
        ("parameter", torch.nn.Parameter(torch.randn(2, 2, generator=generator))),
    ])


# ----------------------------------------------------------------------------------------------------------------
# Hand-made zips


def torch_zip_entries(path):
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, archive.read(info.filename)) for info in archive.infolist()]


def write_zip(path, entries):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            archive.writestr(name, data)


ELEMENT_SIZES = {"FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "DoubleStorage": 8, "LongStorage": 8,
                 "IntStorage": 4, "ShortStorage": 2}


def big_endian_copy(source, target):
    """The zip of `source` with storages byte-swapped and byteorder "big": what torch.save writes on a big-endian
    machine, re-zipped by Python's zipfile (which, unlike torch, pads nothing)."""
    with zipfile.ZipFile(source) as archive:
        pickle = archive.read([name for name in archive.namelist() if name.endswith("/data.pkl")][0])
    sizes = {key: ELEMENT_SIZES.get(storage_class, 1) for key, storage_class in storage_classes(pickle).items()}
    entries = []
    for name, data in torch_zip_entries(source):
        parts = name.split("/")
        if parts[-1] == "byteorder":
            data = b"big"
        elif len(parts) == 3 and parts[1] == "data":
            size = sizes[parts[2]]
            data = b"".join(data[start:start + size][::-1] for start in range(0, len(data), size))
        entries.append((name, data))
    write_zip(target, entries)


def storage_classes(pickle):
    """Storage key -> storage class name, from the persistent-id tuples ('storage', class, key, location, numel)."""
    import pickletools

    classes, memo, recent = {}, {}, []
    for opcode, arg, _ in pickletools.genops(pickle):
        if opcode.name == "GLOBAL":
            recent.append(("global", arg.split(" ")[1]))
        elif opcode.name in ("BINUNICODE", "SHORT_BINUNICODE"):
            recent.append(("str", arg))
        elif opcode.name in ("BINPUT", "LONG_BINPUT") and recent:
            memo[arg] = recent[-1]
        elif opcode.name in ("BINGET", "LONG_BINGET"):
            recent.append(memo.get(arg, ("other", None)))
        elif opcode.name in ("BININT1", "BININT2", "BININT"):
            recent.append(("int", arg))
        elif opcode.name == "BINPERSID":
            # ... 'storage', class, key, location, numel, TUPLE
            tail = recent[-5:]
            if len(tail) == 5 and tail[0] == ("str", "storage") and tail[1][0] == "global":
                classes[tail[2][1]] = tail[1][1]
    return classes


def pickle_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def unicode(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def forbidden_pickles():
    """Pickles naming a forbidden global, written opcode by opcode (and never loaded)."""
    proto2 = b"\x80\x02"
    reduce_call = lambda module, name, argument: pickle_global(module, name) + unicode(argument) + b"\x85R"  # noqa: E731
    float_storage = (b"(" + unicode("storage") + pickle_global("torch", "FloatStorage") + unicode("0") + unicode("cpu")
                     + b"K\x04tQ")
    valid_tensor = (pickle_global("torch._utils", "_rebuild_tensor_v2") + b"(" + float_storage + b"K\x00K\x04\x85K\x01\x85"
                    + b"\x89" + pickle_global("collections", "OrderedDict") + b")Rt" + b"R")
    return {
        "builtins-eval": proto2 + b"}(" + unicode("weight") + reduce_call("builtins", "eval", "1+1") + b"u.",
        "os-system": proto2 + b"}(" + unicode("weight") + reduce_call("os", "system", "echo pwned") + b"u.",
        "posix-system": proto2 + b"}(" + unicode("weight") + reduce_call("posix", "system", "echo pwned") + b"u.",
        "inst-subprocess": proto2 + b"(" + unicode("echo") + b"isubprocess\ncheck_output\n.",
        "stack-global": b"\x80\x04" + b"\x8c\x02os\x8c\x06system\x93" + unicode("echo pwned") + b"\x85R.",
        "after-tensors": (proto2 + pickle_global("collections", "OrderedDict") + b")R(" + unicode("ok") + valid_tensor
                          + unicode("evil") + reduce_call("builtins", "exec", "import os") + b"u."),
    }


def write_forbidden(folder):
    os.makedirs(folder)
    storage = struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)
    names = {"builtins-eval": "builtins.eval", "os-system": "os.system", "posix-system": "posix.system",
             "inst-subprocess": "subprocess.check_output", "stack-global": "os.system", "after-tensors": "builtins.exec"}
    expected = {}
    for name, pickle in forbidden_pickles().items():
        write_zip(os.path.join(folder, f"{name}.bin"), [("archive/data.pkl", pickle), ("archive/byteorder", b"little"),
                                                       ("archive/data/0", storage), ("archive/version", b"3\n")])
        expected[f"forbidden/{name}.bin"] = {"reason": "forbidden_global", "global": names[name]}
    return expected


# ----------------------------------------------------------------------------------------------------------------


def make(out, repo, base=False, log=print):
    import torch
    from safetensors.torch import load_file, save_file

    generator = torch.Generator().manual_seed(SEED)
    cases, errors = {}, {}

    def folder(name):
        path = os.path.join(out, name)
        os.makedirs(path, exist_ok=True)
        return path

    dtypes = dtype_tensors(generator)
    views = view_tensors(generator)

    path = os.path.join(folder("safetensors"), "model.safetensors")
    save_file(dict(dtypes), path, metadata={"format": "pt"})
    loaded = load_file(path)
    cases["safetensors"] = {"format": "safetensors", **describe_all(loaded, safetensors_order(path))}
    log("safetensors: every dtype")

    state = collections.OrderedDict(list(dtypes.items()) + list(views.items()))
    path = os.path.join(folder("pytorch"), "pytorch_model.bin")
    torch.save(state, path)
    cases["pytorch"] = {"format": "pytorch", **describe_all(torch.load(path, weights_only=True))}
    big_path = os.path.join(folder("bigendian"), "pytorch_model.bin")
    big_endian_copy(path, big_path)
    cases["bigendian"] = {"format": "pytorch", **describe_all(torch.load(big_path, weights_only=True))}
    log("pytorch: every dtype and views; big-endian copy")

    module = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 3))
    module.register_buffer("position_ids", torch.arange(6).unsqueeze(0))
    path = os.path.join(folder("state-dict"), "pytorch_model.bin")
    torch.save(module.state_dict(), path)
    cases["state-dict"] = {"format": "pytorch", **describe_all(torch.load(path, weights_only=True))}

    write_sharded_safetensors(folder("sharded-safetensors"))
    shard_state, order = {}, []
    index = json.load(open(os.path.join(out, "sharded-safetensors", "model.safetensors.index.json"), encoding="utf-8"))
    for shard in sorted(set(index["weight_map"].values())):
        shard_path = os.path.join(out, "sharded-safetensors", shard)
        shard_state.update(load_file(shard_path))
        order += safetensors_order(shard_path)
    cases["sharded-safetensors"] = {"format": "safetensors", **describe_all(shard_state, order)}

    sharded = folder("sharded-pytorch")
    items = list(state.items())
    halves = [collections.OrderedDict(items[: len(items) // 2]), collections.OrderedDict(items[len(items) // 2:])]
    weight_map = {}
    for number, half in enumerate(halves, start=1):
        name = f"pytorch_model-{number:05d}-of-00002.bin"
        torch.save(half, os.path.join(sharded, name))
        weight_map.update({key: name for key in half})
    total = sum(tensor.numel() * tensor.element_size() for tensor in state.values())
    with open(os.path.join(sharded, "pytorch_model.bin.index.json"), "w", encoding="utf-8") as handle:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, handle, indent=2)
    reloaded = collections.OrderedDict()
    for half_number in (1, 2):
        reloaded.update(torch.load(os.path.join(sharded, f"pytorch_model-{half_number:05d}-of-00002.bin"), weights_only=True))
    cases["sharded-pytorch"] = {"format": "pytorch", **describe_all(reloaded)}
    log("sharded safetensors (transformers) and sharded .bin")

    torch.save({"weight": torch.ones(2, 2)}, os.path.join(folder("legacy"), "pytorch_model.bin"), _use_new_zipfile_serialization=False)
    errors["legacy/pytorch_model.bin"] = {"reason": "legacy_format"}

    bad = folder("bad")
    save_file({"fine": torch.ones(2), "odd": torch.zeros(3).to(torch.float8_e4m3fn)}, os.path.join(bad, "unknown-dtype.safetensors"))
    errors["bad/unknown-dtype.safetensors"] = {"reason": "unknown_dtype", "key": "odd"}
    torch.save(collections.OrderedDict([("fine", torch.ones(2)), ("odd", torch.zeros(3, dtype=torch.uint16))]), os.path.join(bad, "unknown-dtype-uint16.bin"))
    errors["bad/unknown-dtype-uint16.bin"] = {"reason": "unknown_dtype", "key": "odd"}
    torch.save(collections.OrderedDict([("fine", torch.ones(2)), ("odd", torch.zeros(3, dtype=torch.complex64))]), os.path.join(bad, "unknown-dtype-complex.bin"))
    errors["bad/unknown-dtype-complex.bin"] = {"reason": "unknown_dtype", "key": "odd"}

    errors.update(write_forbidden(os.path.join(out, "forbidden")))
    log("legacy, unknown dtypes, forbidden globals")

    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as handle:
        json.dump({"seed": SEED, "torch": torch.__version__, "cases": cases, "errors": errors}, handle, allow_nan=False)


def safetensors_order(path):
    """The tensors of a .safetensors file in the order of their bytes."""
    with open(path, "rb") as handle:
        length = struct.unpack("<Q", handle.read(8))[0]
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return sorted(header, key=lambda key: header[key]["data_offsets"][0])


def write_sharded_safetensors(folder):
    """A tiny BERT saved by transformers with a shard size that splits it, as the hub holds big models."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(SEED)
    config = BertConfig(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16, vocab_size=20,
                        max_position_embeddings=8)
    BertModel(config).save_pretrained(folder, max_shard_size="2KB")
