// What a PyTorch state dict's data.pkl may contain, and what each allowed global turns into. torch.save of a state
// dict (torch 1.6 to 2.13) names only these globals: collections.OrderedDict, torch._utils._rebuild_tensor_v2 (v3
// for dtypes without a legacy storage class), torch._utils._rebuild_parameter(_with_state), and the storage
// classes (or, with v3, torch.UntypedStorage and a torch dtype). Anything else is a `forbidden_global`.
import { CheckpointError } from '../errors/checkpoint-error.js';
import { PickleGlobal, unpickle } from './pickle.js';
import type { SourceDtype } from './types.js';

/** A storage as the pickle's persistent id describes it; its bytes are the zip entry `<archive>/data/<key>`. */
export interface StorageRef {
  key: string;
  /** The torch dtype name of its elements. */
  dtypeName: string;
  /** Elements of a typed storage; bytes of an untyped one. */
  size: number;
  untyped: boolean;
}

/** A tensor as `_rebuild_tensor_v2/v3` describes it: a strided view of a storage. */
export interface TensorRef {
  storage: StorageRef;
  /** The element type: the storage class's, or v3's explicit dtype. */
  dtypeName: string;
  storageOffset: number;
  shape: number[];
  strides: number[];
}

const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  ComplexFloatStorage: 'complex64',
  ComplexDoubleStorage: 'complex128',
  QInt8Storage: 'qint8',
  QUInt8Storage: 'quint8',
  QInt32Storage: 'qint32',
  QUInt4x2Storage: 'quint4x2',
  QUInt2x4Storage: 'quint2x4',
};

/** torch's dtype attributes (torch 2.13), the aliases folded onto the names torch.save writes. */
const TORCH_DTYPES: Record<string, string> = {
  float32: 'float32', float: 'float32', float64: 'float64', double: 'float64', float16: 'float16', half: 'float16',
  bfloat16: 'bfloat16', int64: 'int64', long: 'int64', int32: 'int32', int: 'int32', int16: 'int16', short: 'int16',
  int8: 'int8', uint8: 'uint8', bool: 'bool', complex32: 'complex32', chalf: 'complex32', complex64: 'complex64',
  cfloat: 'complex64', complex128: 'complex128', cdouble: 'complex128', uint16: 'uint16', uint32: 'uint32',
  uint64: 'uint64', float8_e4m3fn: 'float8_e4m3fn', float8_e4m3fnuz: 'float8_e4m3fnuz', float8_e5m2: 'float8_e5m2',
  float8_e5m2fnuz: 'float8_e5m2fnuz', float8_e8m0fnu: 'float8_e8m0fnu', float4_e2m1fn_x2: 'float4_e2m1fn_x2',
  qint8: 'qint8', quint8: 'quint8', qint32: 'qint32', quint4x2: 'quint4x2', quint2x4: 'quint2x4', bits8: 'bits8',
  bits16: 'bits16', bits1x8: 'bits1x8', bits2x4: 'bits2x4', bits4x2: 'bits4x2',
};

/** The dtypes the readers convert; the others are known to torch but an `unknown_dtype` here. */
export const SUPPORTED_DTYPES: ReadonlySet<string> = new Set<SourceDtype>(['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool']);

class StorageClass extends PickleGlobal {
  constructor(qualifiedName: string, readonly dtypeName: string | undefined) {
    super(qualifiedName);
  }
}

class TorchDtype extends PickleGlobal {
  constructor(qualifiedName: string, readonly dtypeName: string) {
    super(qualifiedName);
  }
}

// Storages come only from persistent ids, never from the pickle's own values.
const storages = new WeakSet<object>();

const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

function intList(value: unknown): number[] | undefined {
  return Array.isArray(value) && value.every(isCount) ? [...value] : undefined;
}

function rebuildTensor(args: readonly unknown[], dtype: unknown, file: string): TensorRef {
  const [storage, storageOffset, size, stride] = args;
  const shape = intList(size);
  const strides = intList(stride);
  const fail = (what: string) => new CheckpointError('bad_header', `${file}: a tensor in the pickle has ${what}.`, { file });
  if (typeof storage !== 'object' || storage === null || !storages.has(storage)) throw fail('no storage');
  if (!isCount(storageOffset)) throw fail(`a bad storage offset ${String(storageOffset)}`);
  if (!shape || !strides || shape.length !== strides.length) throw fail(`a bad size ${String(size)} or stride ${String(stride)}`);
  const ref = storage as StorageRef;
  if (dtype !== undefined && !(dtype instanceof TorchDtype)) throw fail('a dtype that is not a torch dtype');
  return { storage: ref, dtypeName: dtype instanceof TorchDtype ? dtype.dtypeName : ref.dtypeName, storageOffset, shape, strides };
}

function orderedDict(args: readonly unknown[], file: string): Map<unknown, unknown> {
  const dict = new Map<unknown, unknown>();
  if (args.length === 0) return dict;
  if (args.length !== 1 || !Array.isArray(args[0])) throw new CheckpointError('bad_header', `${file}: OrderedDict called with arguments the reader does not take.`, { file });
  for (const pair of args[0] as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new CheckpointError('bad_header', `${file}: OrderedDict called with a bad item.`, { file });
    dict.set(pair[0], pair[1]);
  }
  return dict;
}

const isTensor = (value: unknown): value is TensorRef => typeof value === 'object' && value !== null && 'storage' in value && 'shape' in value;

/** The allow-list: the globals a state dict's pickle may name, as `module.name`. */
export function resolveTorchGlobal(module: string, name: string, file: string): PickleGlobal {
  const qualified = `${module}.${name}`;
  const storageName = module === 'torch' || module === 'torch.cuda' ? name : undefined;
  if (storageName !== undefined && Object.hasOwn(STORAGE_DTYPES, storageName)) return new StorageClass(qualified, STORAGE_DTYPES[storageName]);
  if ((module === 'torch' || module === 'torch.storage') && name === 'UntypedStorage') return new StorageClass(qualified, undefined);
  if (module === 'torch' && Object.hasOwn(TORCH_DTYPES, name)) return new TorchDtype(qualified, TORCH_DTYPES[name]!);
  switch (qualified) {
    case 'collections.OrderedDict':
      return new PickleGlobal(qualified, (args) => orderedDict(args, file));
    case 'torch._utils._rebuild_tensor':
    case 'torch._utils._rebuild_tensor_v2':
      return new PickleGlobal(qualified, (args) => rebuildTensor(args, undefined, file));
    case 'torch._utils._rebuild_tensor_v3':
      return new PickleGlobal(qualified, (args) => rebuildTensor(args, args[6], file));
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return new PickleGlobal(qualified, (args) => {
        if (!isTensor(args[0])) throw new CheckpointError('bad_header', `${file}: ${qualified} called without a tensor.`, { file });
        return args[0];
      });
    default:
      throw new CheckpointError(
        'forbidden_global',
        `${file}: the pickle imports ${qualified}, which is not on the reader's allow-list (a state dict needs only tensors, storages and OrderedDict; torch.load would have run it).`,
        { file },
      );
  }
}

function persistentStorage(id: unknown, file: string): StorageRef {
  const [tag, storageClass, key, , size] = Array.isArray(id) ? id : [];
  if (tag !== 'storage' || !(storageClass instanceof StorageClass) || typeof key !== 'string' || !isCount(size)) {
    throw new CheckpointError('bad_header', `${file}: a persistent id in the pickle is not a storage.`, { file });
  }
  const storage: StorageRef = { key, dtypeName: storageClass.dtypeName ?? 'uint8', size, untyped: storageClass.dtypeName === undefined };
  storages.add(storage);
  return storage;
}

/** The state dict in a PyTorch data.pkl: tensor name -> storage view. Runs no code. */
export function readTorchPickle(bytes: Uint8Array, file: string): Map<string, TensorRef> {
  const result = unpickle(bytes, {
    file,
    resolveGlobal: (module, name) => resolveTorchGlobal(module, name, file),
    persistentLoad: (id) => persistentStorage(id, file),
    build: (target, _state) => {
      // state_dict() carries `_metadata` (module versions) as OrderedDict attributes; parameters may carry state.
      if (!(target instanceof Map) && !isTensor(target)) throw new CheckpointError('bad_header', `${file}: the pickle sets the state of an object the reader does not know.`, { file });
    },
  });
  if (!(result instanceof Map)) throw new CheckpointError('bad_header', `${file} does not hold a state dict (a dict of tensors).`, { file });
  const tensors = new Map<string, TensorRef>();
  for (const [key, value] of result) {
    if (typeof key !== 'string' || !isTensor(value)) {
      throw new CheckpointError('bad_header', `${file} is not a plain state dict: entry ${JSON.stringify(String(key))} is not a tensor.`, { file, key: String(key) });
    }
    tensors.set(key, value);
  }
  return tensors;
}
