// Counts, from the bytes alone, what makes a small file cost a decoder minutes: the scans of a progressive JPEG (each
// one a pass over every pixel) and the directories of a TIFF (libtiff walks them all to count pages). One linear pass
// each, stopped as soon as the count passes its limit, so the count itself cannot be the attack.

/** What {@link countImagePasses} found; `count` is `limit + 1` when it stopped early. */
export interface ImagePasses {
  kind: 'jpeg-scans' | 'tiff-directories';
  count: number;
}

/**
 * Start-of-scan markers of a JPEG, walking marker segments and skipping entropy-coded data to the next real marker
 * (0xFF followed by neither 0x00 nor a restart marker). Stops after `limit + 1`.
 *
 * @example
 * ```ts
 * countJpegScans(progressiveJpeg, 100); // 10 for a usual progressive JPEG, 101 for one of thousands
 * ```
 */
export function countJpegScans(bytes: Uint8Array, limit: number): number {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let scans = 0;
  let position = 2;
  while (position < buffer.length) {
    const marker = buffer.indexOf(0xff, position);
    if (marker < 0 || marker + 1 >= buffer.length) break;
    let code = buffer[marker + 1]!;
    let next = marker + 1;
    // Fill bytes: any number of 0xFF before the marker code.
    while (code === 0xff && next + 1 < buffer.length) code = buffer[++next]!;
    position = next + 1;
    if (code === 0x00 || (code >= 0xd0 && code <= 0xd8) || code === 0x01 || code === 0xff) continue;
    if (code === 0xd9) break;
    if (position + 2 > buffer.length) break;
    const length = buffer.readUInt16BE(position);
    if (length < 2) break;
    position += length;
    if (code === 0xda) {
      scans += 1;
      if (scans > limit) return scans;
      // Entropy-coded data follows; the loop's search for 0xFF skips stuffed 0xFF00 and restart markers above.
    }
  }
  return scans;
}

/**
 * Image file directories of a classic or Big TIFF, following the chain of next-directory offsets; a loop ends it.
 * Stops after `limit + 1`.
 *
 * @example
 * ```ts
 * countTiffDirectories(tiff, 1000); // 1 for a one-page TIFF
 * ```
 */
export function countTiffDirectories(bytes: Uint8Array, limit: number): number {
  if (bytes.length < 8) return 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = bytes[0] === 0x49;
  const big = view.getUint16(2, little) === 43;
  if (big && bytes.length < 16) return 0;
  const readOffset = (at: number): number => (big ? Number(view.getBigUint64(at, little)) : view.getUint32(at, little));
  const seen = new Set<number>();
  let offset = readOffset(big ? 8 : 4);
  let directories = 0;
  while (offset > 0 && !seen.has(offset)) {
    const countSize = big ? 8 : 2;
    if (offset + countSize > bytes.length) break;
    seen.add(offset);
    directories += 1;
    if (directories > limit) return directories;
    const entries = big ? Number(view.getBigUint64(offset, little)) : view.getUint16(offset, little);
    const next = offset + countSize + entries * (big ? 20 : 12);
    if (!Number.isSafeInteger(next) || next + (big ? 8 : 4) > bytes.length) break;
    offset = readOffset(next);
  }
  return directories;
}

/**
 * The decode passes an image's structure asks for, where its format has them: scans for JPEG, directories for TIFF;
 * undefined for other formats.
 *
 * @example
 * ```ts
 * const passes = countImagePasses(bytes, 'jpeg', { maxJpegScans: 100, maxTiffDirectories: 1000 });
 * if (passes && passes.count > 100) refuse();
 * ```
 */
export function countImagePasses(bytes: Uint8Array, format: string, limits: { maxJpegScans: number; maxTiffDirectories: number }): ImagePasses | undefined {
  if (format === 'jpeg') return { kind: 'jpeg-scans', count: countJpegScans(bytes, limits.maxJpegScans) };
  if (format === 'tiff') return { kind: 'tiff-directories', count: countTiffDirectories(bytes, limits.maxTiffDirectories) };
  return undefined;
}
