// A pickle interpreter that runs no code: it builds plain values (numbers, strings, arrays for tuples and lists, Maps
// for dicts) and asks its caller about every global the pickle names. Only what the caller's allow-list returns can
// be "called" (REDUCE, NEWOBJ, INST, OBJ), and calling it runs the caller's own TypeScript, never Python.
// Opcodes: https://github.com/python/cpython/blob/main/Lib/pickletools.py (protocols 0-5).
import { CheckpointError } from '../errors/checkpoint-error.js';

/** A global the allow-list accepted: a callable (`call` runs in its place) or a marker such as a storage class. */
export class PickleGlobal {
  constructor(
    readonly qualifiedName: string,
    readonly call?: (args: readonly unknown[]) => unknown,
  ) {}
}

export interface UnpickleOptions {
  /** The file the pickle came from, for messages. */
  file: string;
  /** Returns the allowed global, or throws (a `forbidden_global` CheckpointError). */
  resolveGlobal(module: string, name: string): PickleGlobal;
  /** Resolves a persistent id (PERSID / BINPERSID). */
  persistentLoad(id: unknown): unknown;
  /** Applies a BUILD's state to an object, or throws. */
  build(target: unknown, state: unknown): void;
}

const MAX_PROTOCOL = 5;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** An int as a number when it is exact, else as a bigint. */
const toInt = (value: bigint): number | bigint => (value <= SAFE && value >= -SAFE ? Number(value) : value);

/** Unpickles `bytes` into plain values. Throws a CheckpointError (`bad_header`, `truncated`, or the hooks' own). */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): unknown {
  const { file } = options;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let at = 0;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();

  const bad = (message: string) => new CheckpointError('bad_header', `${file}: malformed pickle at byte ${at}: ${message}.`, { file });
  const need = (count: number): number => {
    if (count < 0 || at + count > bytes.length) throw new CheckpointError('truncated', `${file}: the pickle ends inside an opcode at byte ${at}.`, { file });
    const start = at;
    at += count;
    return start;
  };
  const u8 = () => bytes[need(1)]!;
  const u16 = () => view.getUint16(need(2), true);
  const u32 = () => view.getUint32(need(4), true);
  const u64 = () => {
    const value = view.getBigUint64(need(8), true);
    if (value > BigInt(bytes.length)) throw bad('a length past the end of the pickle');
    return Number(value);
  };
  const take = (count: number) => bytes.subarray(need(count), at);
  const line = (): string => {
    const end = bytes.indexOf(0x0a, at);
    if (end < 0) throw new CheckpointError('truncated', `${file}: the pickle ends inside a text opcode at byte ${at}.`, { file });
    const text = latin1.decode(bytes.subarray(at, end));
    at = end + 1;
    return text;
  };
  const text = (count: number): string => {
    try {
      return utf8.decode(take(count));
    } catch {
      throw bad('a string that is not UTF-8');
    }
  };
  const pop = (): unknown => {
    if (stack.length <= (marks.at(-1) ?? 0)) throw bad('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw bad('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const mark = marks.pop();
    if (mark === undefined) throw bad('no MARK');
    return stack.splice(mark);
  };
  const signed = (raw: Uint8Array): number | bigint => {
    // State dicts hold small integers (sizes, strides, offsets); a huge LONG would cost quadratic time to build.
    if (raw.length > 16) throw bad(`a ${raw.length}-byte integer`);
    let value = 0n;
    for (let index = raw.length - 1; index >= 0; index -= 1) value = (value << 8n) | BigInt(raw[index]!);
    if (raw.length > 0 && raw[raw.length - 1]! & 0x80) value -= 1n << BigInt(raw.length * 8);
    return toInt(value);
  };
  const parseDecimal = (digits: string): number | bigint => {
    if (!/^[-+]?\d+$/.test(digits)) throw bad(`not an integer: ${JSON.stringify(digits)}`);
    return toInt(BigInt(digits));
  };
  const call = (callable: unknown, args: unknown): unknown => {
    if (!(callable instanceof PickleGlobal) || !callable.call) throw bad(`calls ${callable instanceof PickleGlobal ? callable.qualifiedName : 'a value that is not a callable'}`);
    if (!Array.isArray(args)) throw bad(`calls ${callable.qualifiedName} without an argument tuple`);
    return callable.call(args);
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (!(target instanceof Map) || items.length % 2 !== 0) throw bad('SETITEMS on something that is not a dict');
    for (let index = 0; index < items.length; index += 2) target.set(items[index], items[index + 1]);
  };
  const append = (target: unknown, items: unknown[]) => {
    if (!Array.isArray(target) || Object.isFrozen(target)) throw bad('APPEND on something that is not a list');
    for (const item of items) target.push(item);
  };
  const tuple = (items: unknown[]) => Object.freeze(items);
  const memoGet = (index: number) => {
    if (!memo.has(index)) throw bad(`memo ${index} was never stored`);
    return memo.get(index);
  };

  for (;;) {
    const opcode = u8();
    switch (opcode) {
      case 0x80: { // PROTO
        const protocol = u8();
        if (protocol > MAX_PROTOCOL) throw bad(`pickle protocol ${protocol} is newer than ${MAX_PROTOCOL}`);
        break;
      }
      case 0x95: need(8); break; // FRAME: a length hint only
      case 0x2e: // STOP: like Python, the result is the top of the stack
        if (stack.length === 0) throw bad('STOP with an empty stack');
        return stack[stack.length - 1];
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x49: { // INT
        const digits = line();
        stack.push(digits === '01' ? true : digits === '00' ? false : parseDecimal(digits));
        break;
      }
      case 0x4a: stack.push(view.getInt32(need(4), true)); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4c: stack.push(parseDecimal(line().replace(/L$/, ''))); break; // LONG
      case 0x8a: stack.push(signed(take(u8()))); break; // LONG1
      case 0x8b: stack.push(signed(take(u32()))); break; // LONG4
      case 0x46: { // FLOAT
        const value = Number(line());
        if (Number.isNaN(value)) throw bad('a FLOAT that is not a number');
        stack.push(value);
        break;
      }
      case 0x47: stack.push(view.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x54: stack.push(latin1.decode(take(u32()))); break; // BINSTRING (Python 2 str)
      case 0x55: stack.push(latin1.decode(take(u8()))); break; // SHORT_BINSTRING
      case 0x58: stack.push(text(u32())); break; // BINUNICODE
      case 0x8c: stack.push(text(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(text(u64())); break; // BINUNICODE8
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: stack.push(take(u64()).slice()); break; // BINBYTES8
      case 0x96: stack.push(take(u64()).slice()); break; // BYTEARRAY8
      case 0x29: stack.push(tuple([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(tuple(popMark())); break; // TUPLE
      case 0x85: stack.push(tuple([pop()])); break; // TUPLE1
      case 0x86: { const second = pop(); stack.push(tuple([pop(), second])); break; } // TUPLE2
      case 0x87: { const third = pop(); const second = pop(); stack.push(tuple([pop(), second, third])); break; } // TUPLE3
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { const item = pop(); append(top(), [item]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { const items = popMark(); const dict = new Map(); setItems(dict, items); stack.push(dict); break; } // DICT
      case 0x73: { const value = pop(); const key = pop(); setItems(top(), [key, value]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark();
        const target = top();
        if (!(target instanceof Set)) throw bad('ADDITEMS on something that is not a set');
        for (const item of items) target.add(item);
        break;
      }
      case 0x91: stack.push(new Set(popMark())); break; // FROZENSET
      case 0x67: stack.push(memoGet(Number(parseDecimal(line())))); break; // GET
      case 0x68: stack.push(memoGet(u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
      case 0x70: memo.set(Number(parseDecimal(line())), top()); break; // PUT
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x63: { const module = line(); stack.push(options.resolveGlobal(module, line())); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw bad('STACK_GLOBAL without two strings');
        stack.push(options.resolveGlobal(module, name));
        break;
      }
      case 0x69: { const module = line(); const callable = options.resolveGlobal(module, line()); stack.push(call(callable, popMark())); break; } // INST
      case 0x6f: { const [callable, ...args] = popMark(); stack.push(call(callable, args)); break; } // OBJ
      case 0x52: { const args = pop(); stack.push(call(pop(), args)); break; } // REDUCE
      case 0x81: { const args = pop(); stack.push(call(pop(), args)); break; } // NEWOBJ
      case 0x92: { pop(); const args = pop(); stack.push(call(pop(), args)); break; } // NEWOBJ_EX (keyword arguments dropped)
      case 0x62: { const state = pop(); options.build(top(), state); break; } // BUILD
      case 0x50: stack.push(options.persistentLoad(line())); break; // PERSID
      case 0x51: stack.push(options.persistentLoad(pop())); break; // BINPERSID
      case 0x82: case 0x83: case 0x84: { // EXT1, EXT2, EXT4: globals by number from copyreg's registry
        const code = opcode === 0x82 ? u8() : opcode === 0x83 ? u16() : u32();
        throw new CheckpointError('forbidden_global', `${file}: the pickle imports extension code ${code} (a global by number), which is not allowed.`, { file });
      }
      default:
        at -= 1;
        throw bad(`opcode 0x${opcode.toString(16).padStart(2, '0')} is not supported`);
    }
  }
}
