// A corpus of hostile and odd images, generated at run time (sharp, hand-built PNG/GIF/JPEG structures), plus a
// seeded mutation fuzzer over valid images. Shared by the short test (npm test) and the long stress run.
import { deflateSync, crc32 } from 'node:zlib';
import sharp from 'sharp';

/** What a case must end in: `ok` (200 with a well-formed result), a specific 4xx error code, or `any` (either). */
export type Expectation = 'ok' | 'any' | { status: number; code: string; reason?: string } | { status: '4xx' };

export interface HostileCase {
  name: string;
  bytes: Buffer;
  expect: Expectation;
  /** Send as a data URL with this media type (default image/png); the server ignores it, which is the point. */
  mediaType?: string;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A PNG whose IHDR says `width`x`height` (8-bit RGB) and whose IDAT holds `rows` rows of zeros. */
function handmadePng(width: number, height: number, rows: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const raw = Buffer.alloc(rows * (1 + width * 3));
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0))]);
}

/** Inserts a chunk right before IEND. */
function withPngChunk(png: Buffer, type: string, data: Buffer): Buffer {
  const iend = png.length - 12;
  return Buffer.concat([png.subarray(0, iend), pngChunk(type, data), png.subarray(iend)]);
}

/** A GIF of `frames` 1x1 frames, built by hand so that thousands of frames cost a few bytes each. */
function handmadeGif(frames: number): Buffer {
  const header = Buffer.from('GIF89a', 'latin1');
  const screen = Buffer.from([1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
  const loop = Buffer.from([0x21, 0xff, 0x0b, ...Buffer.from('NETSCAPE2.0', 'latin1'), 0x03, 0x01, 0x00, 0x00, 0x00]);
  const frame = Buffer.from([0x21, 0xf9, 0x04, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0x02, 0x02, 0x44, 0x01, 0x00]);
  return Buffer.concat([header, screen, loop, ...new Array(frames).fill(frame), Buffer.from([0x3b])]);
}

function gradient(width: number, height: number, channels: 3 | 4 = 3): Buffer {
  const pixels = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const offset = (y * width + x) * channels;
      pixels[offset] = (x * 255) / Math.max(1, width - 1);
      pixels[offset + 1] = (y * 255) / Math.max(1, height - 1);
      pixels[offset + 2] = ((x + y) * 7) % 256;
      if (channels === 4) pixels[offset + 3] = (x * 3) % 256;
    }
  }
  return pixels;
}

function raw(width: number, height: number, channels: 3 | 4 = 3): sharp.Sharp {
  return sharp(gradient(width, height, channels), { raw: { width, height, channels } });
}

/** JPEG with `count` COM segments of 64 KB each, inserted after SOI. */
function withJpegComments(jpeg: Buffer, count: number): Buffer {
  const segment = Buffer.alloc(4 + 65_531, 0x41);
  segment[0] = 0xff;
  segment[1] = 0xfe;
  segment.writeUInt16BE(65_533, 2);
  return Buffer.concat([jpeg.subarray(0, 2), ...new Array(count).fill(segment), jpeg.subarray(2)]);
}

const BAD = { status: '4xx' } as const;
const unsupported = { status: 400, code: 'invalid_image' } as const;

/**
 * Builds the corpus. `externalUrl` is put into the SVG and polyglot cases as a reference a decoder might fetch; the
 * test serves it on loopback and checks that nothing ever asked for it.
 */
export async function buildHostileCorpus(externalUrl: string): Promise<HostileCase[]> {
  const jpeg = await raw(96, 64).jpeg({ quality: 85 }).toBuffer();
  const png = await raw(96, 64).png().toBuffer();
  const gif3 = await sharp(handmadeGif(3), { animated: true }).resize(16, 16).gif().toBuffer().catch(() => handmadeGif(3));
  const svgExternal = `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64"><image xlink:href="${externalUrl}/svg-image.png" width="64" height="64"/><text>&xxe;</text></svg>`;
  const zip = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(200, 0x20)]);
  const cases: HostileCase[] = [
    { name: 'zero bytes', bytes: Buffer.alloc(0), expect: BAD },
    { name: 'text named .jpg', bytes: Buffer.from('this is not a photo, just text\n'), expect: unsupported, mediaType: 'image/jpeg' },
    { name: 'HTML page', bytes: Buffer.from(`<!doctype html><html><img src="${externalUrl}/x.png"></html>`), expect: unsupported },
    { name: 'random bytes', bytes: Buffer.from(Array.from({ length: 4096 }, (_, index) => (index * 7919 + 13) % 256)), expect: unsupported },
    { name: 'JPEG magic only', bytes: Buffer.from([0xff, 0xd8, 0xff]), expect: unsupported },
    { name: 'truncated JPEG (half)', bytes: jpeg.subarray(0, Math.floor(jpeg.length / 2)), expect: unsupported },
    { name: 'truncated PNG (after IHDR)', bytes: png.subarray(0, 33), expect: unsupported },
    { name: 'PNG with a bad CRC', bytes: Buffer.from(png.map((byte, index) => (index === 29 ? byte ^ 0xff : byte))), expect: 'any' },
    { name: 'pixel bomb: PNG header of 100000x100000', bytes: handmadePng(100_000, 100_000, 1), expect: { status: 400, code: 'invalid_image' } },
    { name: 'header lying about its size: 4000x4000 PNG with one row of data', bytes: handmadePng(4000, 4000, 1), expect: unsupported },
    { name: 'decompression-heavy PNG: 5000x5000 zeros in ~30 KB', bytes: handmadePng(5000, 5000, 5000), expect: 'ok' },
    { name: '1x1 PNG', bytes: await raw(1, 1).png().toBuffer(), expect: 'ok' },
    { name: '12000x2 banner', bytes: await raw(12_000, 2).png().toBuffer(), expect: unsupported },
    { name: '2x3000 strip', bytes: await raw(2, 3000).png().toBuffer(), expect: unsupported },
    { name: 'CMYK JPEG', bytes: await raw(64, 48).toColourspace('cmyk').jpeg().toBuffer(), expect: 'ok' },
    { name: '16-bit PNG', bytes: await raw(64, 48).toColourspace('rgb16').png().toBuffer(), expect: 'ok' },
    { name: 'RGBA PNG with alpha', bytes: await raw(64, 48, 4).png().toBuffer(), expect: 'ok' },
    { name: 'grey JPEG', bytes: await raw(64, 48).greyscale().jpeg().toBuffer(), expect: 'ok' },
    { name: '1-bit palette PNG', bytes: await raw(64, 48).png({ palette: true, colours: 2 }).toBuffer(), expect: 'ok' },
    { name: 'interlaced PNG', bytes: await raw(64, 48).png({ progressive: true }).toBuffer(), expect: 'ok' },
    { name: 'progressive JPEG', bytes: await raw(64, 48).jpeg({ progressive: true }).toBuffer(), expect: 'ok' },
    { name: 'animated GIF (3 frames)', bytes: gif3, expect: 'ok' },
    { name: 'animated WebP', bytes: await sharp(handmadeGif(4), { animated: true }).resize(16, 16).webp().toBuffer(), expect: 'ok' },
    { name: 'GIF declaring 5000 frames', bytes: handmadeGif(5000), expect: unsupported },
    { name: 'lossless WebP', bytes: await raw(64, 48).webp({ lossless: true }).toBuffer(), expect: 'ok' },
    { name: 'AVIF', bytes: await raw(64, 48).avif().toBuffer(), expect: 'ok' },
    { name: 'multi-page TIFF', bytes: await sharp(handmadeGif(3), { animated: true }).resize(16, 16).tiff().toBuffer(), expect: 'ok' },
    { name: 'EXIF-rotated JPEG (orientation 6)', bytes: await raw(64, 32).jpeg().withMetadata({ orientation: 6 }).toBuffer(), expect: 'ok' },
    { name: 'SVG with external references and an XXE entity', bytes: Buffer.from(svgExternal), expect: unsupported, mediaType: 'image/svg+xml' },
    { name: 'SVG without prolog', bytes: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><image href="${externalUrl}/b.png"/></svg>`), expect: unsupported },
    { name: 'PDF', bytes: Buffer.from(`%PDF-1.4\n1 0 obj << /Type /XObject /Subtype /Image /URI (${externalUrl}/pdf) >> endobj\n%%EOF`), expect: unsupported, mediaType: 'application/pdf' },
    { name: 'BMP', bytes: Buffer.concat([Buffer.from('BM', 'latin1'), Buffer.alloc(60)]), expect: unsupported },
    { name: 'PNM', bytes: Buffer.concat([Buffer.from('P6\n4 4\n255\n'), Buffer.alloc(48, 9)]), expect: unsupported },
    { name: 'JPEG XL signature', bytes: Buffer.from([0xff, 0x0a, 0x00, 0x00, 0x00, 0x00]), expect: unsupported },
    { name: 'metadata bloat: PNG with a 1.5 MB text chunk', bytes: withPngChunk(png, 'tEXt', Buffer.concat([Buffer.from('Comment\0'), Buffer.alloc(1_500_000, 0x61)])), expect: 'ok' },
    { name: 'metadata bloat: JPEG with 24 64-KB comment segments', bytes: withJpegComments(jpeg, 24), expect: 'ok' },
    { name: 'polyglot: GIF header then JavaScript', bytes: Buffer.from(`GIF89a=1;fetch("${externalUrl}/js");//`), expect: unsupported },
    { name: 'polyglot: JPEG with a ZIP after EOI', bytes: Buffer.concat([jpeg, zip]), expect: 'ok' },
    { name: 'polyglot: PNG with a script in a text chunk', bytes: withPngChunk(png, 'tEXt', Buffer.from(`x\0<script src="${externalUrl}/s.js"></script>`)), expect: 'ok' },
    { name: 'polyglot: JPEG magic then a PDF', bytes: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('%PDF-1.4\n%%EOF')]), expect: unsupported },
    { name: 'camera raw (DNG-tagged TIFF)', bytes: dngLike(), expect: unsupported },
    { name: 'TIFF with 5 channels (RGB + 2 extra)', bytes: handmadeTiff(8, 8, 5), expect: 'any' },
    { name: 'TIFF with 6 channels', bytes: handmadeTiff(8, 8, 6), expect: { status: 400, code: 'invalid_image' } },
  ];
  return cases;
}

/** An uncompressed little-endian TIFF of `samples` 8-bit channels (RGB plus extra samples), built by hand. */
function handmadeTiff(width: number, height: number, samples: number): Buffer {
  const entries: [tag: number, type: number, count: number, value: number][] = [];
  const bitsOffset = 8 + 2 + 12 * 11 + 4;
  const extraOffset = bitsOffset + 2 * samples;
  const dataOffset = extraOffset + 2 * (samples - 3);
  entries.push([256, 3, 1, width], [257, 3, 1, height], [258, 3, samples, bitsOffset], [259, 3, 1, 1], [262, 3, 1, 2], [273, 4, 1, dataOffset]);
  entries.push([277, 3, 1, samples], [278, 3, 1, height], [279, 4, 1, width * height * samples], [284, 3, 1, 1], [338, 3, samples - 3, extraOffset]);
  const buffer = Buffer.alloc(dataOffset + width * height * samples, 0x40);
  buffer.write('II*\0', 0, 'latin1');
  buffer.writeUInt32LE(8, 4);
  buffer.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, count, value], index) => {
    const at = 10 + index * 12;
    buffer.writeUInt16LE(tag, at);
    buffer.writeUInt16LE(type, at + 2);
    buffer.writeUInt32LE(count, at + 4);
    if (type === 3 && count === 1) buffer.writeUInt16LE(value, at + 8);
    else buffer.writeUInt32LE(value, at + 8);
  });
  for (let index = 0; index < samples; index += 1) buffer.writeUInt16LE(8, bitsOffset + 2 * index);
  return buffer;
}

// A little-endian TIFF whose first IFD carries the DNGVersion tag: refused as camera raw.
function dngLike(): Buffer {
  const buffer = Buffer.alloc(64);
  buffer.write('II*\0', 0, 'latin1');
  buffer.writeUInt32LE(8, 4);
  buffer.writeUInt16LE(1, 8);
  buffer.writeUInt16LE(50706, 10);
  buffer.writeUInt16LE(1, 12);
  buffer.writeUInt32LE(4, 14);
  buffer.writeUInt32LE(0x01040000, 18);
  return buffer;
}

/** mulberry32: a tiny seeded PRNG, so that a fuzz run is the same run every time. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Valid images the fuzzer mutates: one of each accepted container. */
export async function fuzzSeeds(): Promise<{ name: string; bytes: Buffer }[]> {
  return [
    { name: 'jpeg', bytes: await raw(48, 32).jpeg({ quality: 80 }).toBuffer() },
    { name: 'png', bytes: await raw(48, 32).png().toBuffer() },
    { name: 'gif', bytes: await raw(24, 16).gif().toBuffer() },
    { name: 'webp', bytes: await raw(48, 32).webp().toBuffer() },
    { name: 'tiff', bytes: await raw(24, 16).tiff().toBuffer() },
  ];
}

/** One mutation of a valid image: byte flips, truncation, insertion, chunk duplication, or a forged size field. */
export function mutate(bytes: Buffer, random: () => number): { bytes: Buffer; how: string } {
  const pick = (limit: number): number => Math.floor(random() * limit);
  const copy = Buffer.from(bytes);
  switch (pick(6)) {
    case 0: {
      const flips = 1 + pick(8);
      for (let index = 0; index < flips; index += 1) copy[pick(copy.length)] = pick(256);
      return { bytes: copy, how: `flip ${flips} bytes` };
    }
    case 1: {
      const at = pick(copy.length);
      return { bytes: copy.subarray(0, at), how: `truncate at ${at}` };
    }
    case 2: {
      const at = pick(copy.length);
      const junk = Buffer.from(Array.from({ length: 1 + pick(64) }, () => pick(256)));
      return { bytes: Buffer.concat([copy.subarray(0, at), junk, copy.subarray(at)]), how: `insert ${junk.length} at ${at}` };
    }
    case 3: {
      const start = pick(copy.length);
      const end = Math.min(copy.length, start + 1 + pick(256));
      return { bytes: Buffer.concat([copy.subarray(0, end), copy.subarray(start, end), copy.subarray(end)]), how: `duplicate ${start}-${end}` };
    }
    case 4: {
      // Forge a big-endian 16- or 32-bit field near the header: where the width and height of most formats live.
      const at = pick(Math.min(64, copy.length - 4));
      const value = [0, 1, 0xffff, 0x7fffffff, 0xffffffff, pick(0x10000)][pick(6)]!;
      if (random() < 0.5) copy.writeUInt16BE(value & 0xffff, at);
      else copy.writeUInt32BE(value >>> 0, at);
      return { bytes: copy, how: `forge ${value} at ${at}` };
    }
    default: {
      const start = pick(copy.length);
      const length = 1 + pick(Math.max(1, copy.length - start));
      copy.fill(pick(2) === 0 ? 0 : 0xff, start, start + length);
      return { bytes: copy, how: `fill ${start}+${length}` };
    }
  }
}
