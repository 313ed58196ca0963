/** Container formats `loadImage` decodes, as sharp names them. */
export type AcceptedFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'heif';

export const ACCEPTED_FORMATS: readonly AcceptedFormat[] = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif'];

// Brands of an ISO-BMFF `ftyp` box that mean HEIF or AVIF still images or sequences.
const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs', 'mif1', 'msf1', 'mif2', 'avif', 'avis']);

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

/**
 * Recognises the accepted formats by their magic bytes. It runs before sharp sees the bytes because
 * sharp's own probing hands SVG to librsvg and PDF to poppler, parsers we never want to reach.
 * Returns undefined for anything else; `describeRefusedBytes` then says what it looks like.
 */
export function sniffFormat(bytes: Uint8Array): AcceptedFormat | undefined {
  const b = bytes;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 4) === 'PNG' && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'png';
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 4) {
    const head = ascii(b, 0, 4);
    // Classic TIFF (42) and BigTIFF (43), both byte orders.
    if (head === 'II*\0' || head === 'MM\0*') return isCameraRaw(b) ? undefined : 'tiff';
    if (head === 'II+\0' || head === 'MM\0+') return 'tiff';
  }
  if (b.length >= 12 && ascii(b, 4, 8) === 'ftyp') {
    const boxSize = ((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]!;
    const end = Math.min(b.length, Math.max(boxSize, 16));
    if (HEIF_BRANDS.has(ascii(b, 8, 12))) return 'heif';
    // Compatible brands follow the major brand and the minor version.
    for (let offset = 16; offset + 4 <= end; offset += 4) {
      if (HEIF_BRANDS.has(ascii(b, offset, offset + 4))) return 'heif';
    }
  }
  return undefined;
}

const DNG_VERSION_TAG = 50706;

// Camera raw files are TIFF containers; libtiff would decode their first IFD (often a thumbnail),
// which is not the photo the user meant, so they are refused like other raw formats.
function isCameraRaw(b: Uint8Array): boolean {
  if (b.length >= 10 && b[8] === 0x43 && b[9] === 0x52) return true; // Canon CR2: "CR" after the header
  if (b.length < 8) return false;
  const little = b[0] === 0x49;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > b.length) return false;
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 2 > b.length) break;
    if (view.getUint16(entry, little) === DNG_VERSION_TAG) return true;
  }
  return false;
}

/** A short human name for refused bytes, so the error says what was given rather than only what was not. */
export function describeRefusedBytes(bytes: Uint8Array): string {
  const head = Buffer.from(bytes.subarray(0, 512)).toString('latin1');
  const trimmed = head.replace(/^\uFEFF/, '').trimStart();
  if (head.startsWith('%PDF')) return 'a PDF document';
  if (/^(II\*\0|MM\0\*)/.test(head) || head.startsWith('IIRO') || head.startsWith('IIU\0')) return 'a camera raw file';
  if (/^<svg[\s>]/i.test(trimmed) || (/^<\?xml/i.test(trimmed) && /<svg[\s>]/i.test(head))) return 'an SVG image';
  if (/^<(!doctype html|html)/i.test(trimmed)) return 'an HTML document';
  if (/^</.test(trimmed)) return 'an XML or HTML document';
  if (head.startsWith('BM')) return 'a BMP image';
  if (head.startsWith('8BPS')) return 'a Photoshop document';
  if (head.startsWith('\0\0\0\x0cjP  ') || head.startsWith('\xff\x4f\xff\x51')) return 'a JPEG 2000 image';
  if (head.startsWith('\xff\x0a') || head.startsWith('\0\0\0\x0cJXL ')) return 'a JPEG XL image';
  if (/^P[1-7]\s/.test(head)) return 'a PNM image';
  if (head.startsWith('SIMPLE  =')) return 'a FITS image';
  return 'not a recognised image';
}
