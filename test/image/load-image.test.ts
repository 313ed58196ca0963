import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidImageError, InvalidOptionError } from '../../dist/src/errors/index.js';
import { loadImage } from '../../dist/src/image/load-image.js';
import type { LoadedImage } from '../../dist/src/types.js';

const FISHING = 'test/fixtures/images/fishing.jpg';
const fishingBytes = readFileSync(FISHING);

let directory: string;
beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'vqa-llm-images-'));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function file(name: string, bytes: Uint8Array | string): string {
  const path = join(directory, name);
  writeFileSync(path, bytes);
  return path;
}

async function failure(promise: Promise<unknown>): Promise<InvalidImageError> {
  try {
    await promise;
  } catch (error) {
    if (!InvalidImageError.isInstance(error)) throw error;
    return error;
  }
  throw new Error('expected loadImage to reject');
}

function solidRaw(width: number, height: number, channels: 3 | 4, colour: number[]): Buffer {
  const data = Buffer.alloc(width * height * channels);
  for (let i = 0; i < data.length; i += channels) data.set(colour, i);
  return data;
}

async function png(width: number, height: number, colour = [200, 100, 50]): Promise<Buffer> {
  return sharp(solidRaw(width, height, 3, colour), { raw: { width, height, channels: 3 } }).png().toBuffer();
}

function pixel(image: LoadedImage, x: number, y: number): number[] {
  const p = (y * image.width + x) * 3;
  return Array.from(image.data.subarray(p, p + 3));
}

// A PNG made only of chunks we write, so its header can claim any size.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, body: Uint8Array): Buffer {
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), body]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}
function pngHeaderClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', Buffer.alloc(0))]);
}

describe('loadImage', () => {
  describe('inputs', () => {
    it('should load a file path as 8-bit RGB with its size, format, hash and byte length', async () => {
      const image = await loadImage(FISHING);
      expect(image).toMatchObject({ kind: 'loaded-image', width: 368, height: 233, format: 'jpeg', byteLength: fishingBytes.length });
      expect(image.data).toBeInstanceOf(Uint8Array);
      expect(image.data.length).toBe(368 * 233 * 3);
      expect(image.hash).toBe(createHash('sha256').update(fishingBytes).digest('hex'));
    });

    it('should load file: URLs given as a string or a URL object', async () => {
      const url = pathToFileURL(FISHING);
      expect((await loadImage(url)).hash).toBe((await loadImage(FISHING)).hash);
      expect((await loadImage(url.href)).width).toBe(368);
    });

    it('should load a Buffer, a Uint8Array and an ArrayBuffer alike', async () => {
      const expected = await loadImage(FISHING);
      const copy = new Uint8Array(fishingBytes);
      for (const input of [fishingBytes, copy, copy.buffer]) {
        const image = await loadImage(input);
        expect(image.hash).toBe(expected.hash);
        expect(Buffer.from(image.data).equals(Buffer.from(expected.data))).toBe(true);
      }
    });

    it('should load a base64 data URL, ignoring its declared type', async () => {
      const image = await loadImage(`data:image/svg+xml;base64,${fishingBytes.toString('base64')}`);
      expect(image.format).toBe('jpeg');
      expect(image.hash).toBe(createHash('sha256').update(fishingBytes).digest('hex'));
    });

    it('should load a percent-encoded data URL', async () => {
      const bytes = await png(3, 2);
      const encoded = Array.from(bytes, (byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');
      const image = await loadImage(`data:,${encoded}`);
      expect(image).toMatchObject({ width: 3, height: 2, format: 'png', byteLength: bytes.length });
    });

    it('should return an already loaded image unchanged', async () => {
      const image = await loadImage(FISHING);
      expect(await loadImage(image)).toBe(image);
    });

    it('should give equal hashes to equal bytes and different hashes to different bytes', async () => {
      const a = await loadImage(await png(4, 4));
      const b = await loadImage(file('copy.png', await png(4, 4)));
      const c = await loadImage(await png(4, 4, [200, 100, 51]));
      expect(a.hash).toBe(b.hash);
      expect(a.hash).not.toBe(c.hash);
    });

    it('should refuse a non-image argument with InvalidOptionError', async () => {
      await expect(loadImage(42 as never)).rejects.toSatisfy((error) => InvalidOptionError.isInstance(error));
    });

    it('should refuse URL schemes it does not speak', async () => {
      expect((await failure(loadImage('ftp://example.com/a.jpg'))).reason).toBe('url_refused');
    });

    it('should refuse files when allowFiles is false, naming the option', async () => {
      const error = await failure(loadImage(FISHING, { allowFiles: false }));
      expect(error.reason).toBe('url_refused');
      expect(error.message).toContain('allowFiles');
    });

    it('should reject at once when the signal is already aborted', async () => {
      await expect(loadImage(FISHING, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    });

    it('should refuse a limit that is not a positive number, naming it', async () => {
      await expect(loadImage(FISHING, { maxPixels: -1 })).rejects.toThrow(/maxPixels/);
      await expect(loadImage(FISHING, { maxAspectRatio: 0.5 })).rejects.toThrow(/maxAspectRatio/);
    });
  });

  describe('bad input', () => {
    it('should refuse zero bytes as empty, from a buffer and from a file', async () => {
      expect((await failure(loadImage(new Uint8Array(0)))).reason).toBe('empty');
      expect((await failure(loadImage(file('empty.jpg', '')))).reason).toBe('empty');
    });

    it('should report a missing file as not_found, naming the path', async () => {
      const path = join(directory, 'nope', 'missing.jpg');
      const error = await failure(loadImage(path));
      expect(error.reason).toBe('not_found');
      expect(error.message).toContain(path);
    });

    it('should refuse text named .jpg as unsupported_format', async () => {
      expect((await failure(loadImage(file('note.jpg', 'hello, this is not a photo')))).reason).toBe('unsupported_format');
    });

    it('should refuse a truncated JPEG instead of returning grey pixels', async () => {
      const error = await failure(loadImage(fishingBytes.subarray(0, Math.floor(fishingBytes.length * 0.6))));
      expect(error.reason).toBe('truncated');
      expect(error.cause).toBeInstanceOf(Error);
    });

    it('should refuse a truncated PNG', async () => {
      const noise = Buffer.from(Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 7919) % 251));
      const bytes = await sharp(noise, { raw: { width: 64, height: 64, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
      expect((await failure(loadImage(bytes.subarray(0, Math.floor(bytes.length * 0.6))))).reason).toBe('truncated');
    });

    it.each([
      ['an SVG', '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>', /SVG/],
      ['an SVG with an XML prolog', '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', /SVG/],
      ['a PDF', '%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n', /PDF/],
      ['a PPM', 'P6\n2 2\n255\n\0\0\0\0\0\0\0\0\0\0\0\0', /PNM/],
    ])('should refuse %s as unsupported_format before decoding', async (_name, text, what) => {
      const error = await failure(loadImage(Buffer.from(text, 'latin1')));
      expect(error.reason).toBe('unsupported_format');
      expect(error.message).toMatch(what);
      expect(error.message).toContain('JPEG, PNG');
    });

    it('should refuse a DNG camera raw file although it is a TIFF container', async () => {
      // Header, one IFD entry: DNGVersion (50706), BYTE x4.
      const dng = Buffer.from([0x49, 0x49, 0x2a, 0, 8, 0, 0, 0, 1, 0, 0x12, 0xc6, 1, 0, 4, 0, 0, 0, 1, 4, 0, 0, 0, 0, 0, 0]);
      const error = await failure(loadImage(dng));
      expect(error.reason).toBe('unsupported_format');
      expect(error.message).toMatch(/raw/);
    });

    it('should refuse a PNG header claiming 100000x100000 pixels, with the numbers and the option', async () => {
      const error = await failure(loadImage(pngHeaderClaiming(100_000, 100_000)));
      expect(error.reason).toBe('too_many_pixels');
      expect(error.message).toContain('100000x100000');
      expect(error.message).toContain('10000000000');
      expect(error.message).toContain('maxPixels (40000000)');
    });

    it('should honour a lower maxPixels', async () => {
      const error = await failure(loadImage(await png(100, 100), { maxPixels: 9_999 }));
      expect(error.reason).toBe('too_many_pixels');
      expect(error.message).toContain('maxPixels (9999)');
    });

    it('should accept a 1x1 image', async () => {
      const image = await loadImage(await png(1, 1, [1, 2, 3]));
      expect(image).toMatchObject({ width: 1, height: 1 });
      expect(Array.from(image.data)).toEqual([1, 2, 3]);
    });

    it('should refuse an image smaller than minSide', async () => {
      const error = await failure(loadImage(await png(40, 10), { minSide: 16 }));
      expect(error.reason).toBe('too_small');
      expect(error.message).toContain('40x10');
      expect(error.message).toContain('minSide (16)');
    });

    it('should refuse 12000x2 by aspect ratio, saying the ratio and the option', async () => {
      const error = await failure(loadImage(await png(12_000, 2)));
      expect(error.reason).toBe('aspect_ratio');
      expect(error.message).toContain('12000x2');
      expect(error.message).toContain('6000:1');
      expect(error.message).toContain('maxAspectRatio (32)');
    });

    it('should refuse a file over maxBytes before reading it', async () => {
      const error = await failure(loadImage(FISHING, { maxBytes: 1000 }));
      expect(error.reason).toBe('too_many_bytes');
      expect(error.message).toContain(`${fishingBytes.length} bytes`);
      expect(error.message).toContain('maxBytes (1000)');
    });

    it('should refuse an oversized data URL before decoding it', async () => {
      const error = await failure(loadImage(`data:image/jpeg;base64,${fishingBytes.toString('base64')}`, { maxBytes: 1000 }));
      expect(error.reason).toBe('too_many_bytes');
    });

    it('should refuse a data URL whose base64 is malformed', async () => {
      expect((await failure(loadImage('data:image/png;base64,iVBOR*w0KGgo')))).toMatchObject({ reason: 'unsupported_format' });
    });
  });

  describe('decoding', () => {
    it('should convert a CMYK JPEG to RGB', async () => {
      const cmyk = await sharp(solidRaw(8, 8, 3, [255, 0, 0]), { raw: { width: 8, height: 8, channels: 3 } }).toColourspace('cmyk').jpeg().toBuffer();
      expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
      const image = await loadImage(cmyk);
      expect(image.data.length).toBe(8 * 8 * 3);
      const [r, g, b] = pixel(image, 4, 4);
      expect(r).toBeGreaterThan(200);
      expect(g).toBeLessThan(40);
      expect(b).toBeLessThan(40);
    });

    it('should convert a 16-bit PNG to 8 bits', async () => {
      const deep = await sharp(solidRaw(8, 8, 3, [128, 64, 32]), { raw: { width: 8, height: 8, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
      expect((await sharp(deep).metadata()).depth).toBe('ushort');
      const image = await loadImage(deep);
      expect(image.data.length).toBe(8 * 8 * 3);
      expect(pixel(image, 3, 3)).toEqual([128, 64, 32]);
    });

    it('should expand grayscale to three equal channels', async () => {
      const gray = await sharp(Buffer.alloc(16, 77), { raw: { width: 4, height: 4, channels: 1 } }).toColourspace('b-w').png().toBuffer();
      expect((await sharp(gray).metadata()).channels).toBe(1);
      const image = await loadImage(gray);
      expect(pixel(image, 2, 2)).toEqual([77, 77, 77]);
    });

    it('should flatten transparency onto white', async () => {
      const rgba = Buffer.concat([Buffer.from([255, 0, 0, 0]), Buffer.from([0, 0, 255, 255]), Buffer.from([0, 0, 0, 128])]);
      const image = await loadImage(await sharp(rgba, { raw: { width: 3, height: 1, channels: 4 } }).png().toBuffer());
      expect(pixel(image, 0, 0)).toEqual([255, 255, 255]);
      expect(pixel(image, 1, 0)).toEqual([0, 0, 255]);
      const [r, g, b] = pixel(image, 2, 0);
      expect(r).toBeGreaterThan(120);
      expect(r).toBeLessThan(135);
      expect([g, b]).toEqual([r, r]);
    });

    async function animation(format: 'gif' | 'webp'): Promise<Buffer> {
      const frames = [
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
      ].map((colour) => solidRaw(8, 8, 3, colour));
      const strip = sharp(Buffer.concat(frames), { raw: { width: 8, height: 24, channels: 3, pageHeight: 8 } });
      return format === 'gif' ? strip.gif({ loop: 0 }).toBuffer() : strip.webp({ loop: 0, lossless: true }).toBuffer();
    }

    it.each(['gif', 'webp'] as const)('should keep only the first frame of an animated %s', async (format) => {
      const bytes = await animation(format);
      expect((await sharp(bytes).metadata()).pages).toBe(3);
      const image = await loadImage(bytes);
      expect(image).toMatchObject({ width: 8, height: 8, format });
      for (const [x, y] of [[0, 0], [7, 7], [3, 5]] as const) {
        const [r, g, b] = pixel(image, x, y);
        expect(r).toBeGreaterThan(200);
        expect(g + b).toBeLessThan(60);
      }
    });

    it('should apply EXIF orientation 6, swapping width and height', async () => {
      // 40x10, red left half, blue right half; orientation 6 means "rotate 90 degrees clockwise to display".
      const raw = Buffer.alloc(40 * 10 * 3);
      for (let y = 0; y < 10; y++) for (let x = 0; x < 40; x++) raw.set(x < 20 ? [255, 0, 0] : [0, 0, 255], (y * 40 + x) * 3);
      const jpeg = await sharp(raw, { raw: { width: 40, height: 10, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
      expect((await sharp(jpeg).metadata()).orientation).toBe(6);
      const image = await loadImage(jpeg);
      expect([image.width, image.height]).toEqual([10, 40]);
      expect(pixel(image, 5, 5)[0]).toBeGreaterThan(200); // top: what was the left
      expect(pixel(image, 5, 35)[2]).toBeGreaterThan(200); // bottom: what was the right
    });

    it('should load a JPEG bloated with 6 MB of metadata segments, returning only pixels', async () => {
      const segment = Buffer.alloc(65_535 + 2, 0x20);
      segment.set([0xff, 0xef, 0xff, 0xff]); // APP15, length 65535
      const bloated = Buffer.concat([fishingBytes.subarray(0, 2), ...Array.from({ length: 96 }, () => segment), fishingBytes.subarray(2)]);
      expect(bloated.length).toBeGreaterThan(6_000_000);
      const image = await loadImage(bloated);
      expect(image).toMatchObject({ width: 368, height: 233, byteLength: bloated.length });
      expect(image.data.length).toBe(368 * 233 * 3);
      expect((await failure(loadImage(bloated, { maxBytes: 1024 * 1024 }))).reason).toBe('too_many_bytes');
    });

    it('should load TIFF and AVIF', async () => {
      const tiff = await sharp(solidRaw(6, 4, 3, [10, 200, 30]), { raw: { width: 6, height: 4, channels: 3 } }).tiff().toBuffer();
      expect(await loadImage(tiff)).toMatchObject({ format: 'tiff', width: 6, height: 4 });
      const avif = await sharp(solidRaw(16, 16, 3, [10, 200, 30]), { raw: { width: 16, height: 16, channels: 3 } }).avif().toBuffer();
      expect(await loadImage(avif)).toMatchObject({ format: 'heif', width: 16, height: 16 });
    });
  });

  describe('http(s) URLs', () => {
    let server: Server;
    let base: string;
    let imageBytes: Buffer;
    const streamed = { bytes: 0, closed: false };
    const pending = new Set<ServerResponse>();

    beforeAll(async () => {
      imageBytes = await png(5, 3);
      server = createServer((request, response) => {
        const path = request.url ?? '/';
        const redirect = /^\/redirect\/(\d+)$/.exec(path);
        if (path === '/image.png') {
          response.writeHead(200, { 'content-type': 'image/png', 'content-length': imageBytes.length }).end(imageBytes);
        } else if (redirect) {
          const left = Number(redirect[1]);
          response.writeHead(302, { location: left === 0 ? '/image.png' : `/redirect/${left - 1}` }).end();
        } else if (path === '/huge') {
          // No Content-Length: only counting while streaming can stop it.
          response.writeHead(200, { 'content-type': 'image/png' });
          response.write(imageBytes);
          const timer = setInterval(() => response.write(Buffer.alloc(64 * 1024)) && (streamed.bytes += 64 * 1024), 1);
          response.on('close', () => {
            clearInterval(timer);
            streamed.closed = true;
          });
        } else if (path === '/declared-huge') {
          response.writeHead(200, { 'content-length': 50 * 1024 * 1024 });
          response.write(imageBytes);
          pending.add(response);
        } else if (path === '/slow') {
          response.writeHead(200, { 'content-type': 'image/png' });
          response.write(imageBytes.subarray(0, 10));
          pending.add(response);
        } else {
          response.writeHead(404).end('not here');
        }
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterAll(async () => {
      for (const response of pending) response.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    it('should download and decode an image served with 200', async () => {
      const image = await loadImage(`${base}/image.png`);
      expect(image).toMatchObject({ width: 5, height: 3, format: 'png', byteLength: imageBytes.length });
      expect(image.hash).toBe(createHash('sha256').update(imageBytes).digest('hex'));
      expect((await loadImage(new URL(`${base}/image.png`))).hash).toBe(image.hash);
    });

    it('should report a 404 as fetch_failed with the status', async () => {
      const error = await failure(loadImage(`${base}/missing.png`));
      expect(error.reason).toBe('fetch_failed');
      expect(error.message).toContain('404');
    });

    it('should follow up to 3 redirects and refuse a fourth', async () => {
      expect((await loadImage(`${base}/redirect/2`)).width).toBe(5);
      const error = await failure(loadImage(`${base}/redirect/3`));
      expect(error.reason).toBe('fetch_failed');
      expect(error.message).toMatch(/redirected more than 3 times/);
    });

    it('should cut off a streamed body as soon as it passes maxBytes', async () => {
      const error = await failure(loadImage(`${base}/huge`, { maxBytes: 1024 * 1024 }));
      expect(error.reason).toBe('too_many_bytes');
      expect(error.message).toContain('maxBytes (1048576)');
      await expect.poll(() => streamed.closed).toBe(true);
      // The server stopped well before the default 20 MiB: the client closed the connection.
      expect(streamed.bytes).toBeLessThan(10 * 1024 * 1024);
    });

    it('should refuse a body whose Content-Length is over maxBytes without reading it', async () => {
      expect((await failure(loadImage(`${base}/declared-huge`))).reason).toBe('too_many_bytes');
    });

    it('should give up on a server that stalls, naming fetchTimeoutMs', async () => {
      const error = await failure(loadImage(`${base}/slow`, { fetchTimeoutMs: 300 }));
      expect(error.reason).toBe('fetch_failed');
      expect(error.message).toContain('fetchTimeoutMs (300 ms)');
    });

    it("should reject with the caller's abort reason, not a fetch error, when aborted mid-download", async () => {
      const controller = new AbortController();
      const reason = new Error('user went away');
      setTimeout(() => controller.abort(reason), 100);
      await expect(loadImage(`${base}/slow`, { signal: controller.signal })).rejects.toBe(reason);
    });

    it('should refuse URLs when allowUrls is false, naming the option', async () => {
      const error = await failure(loadImage(`${base}/image.png`, { allowUrls: false }));
      expect(error.reason).toBe('url_refused');
      expect(error.message).toContain('allowUrls');
    });
  });
});
