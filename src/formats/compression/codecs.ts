/**
 * Which compression a file uses: by its extension, by its first bytes, or both.
 */

/** A supported compression codec; `none` passes bytes through. */
export type Codec = 'gzip' | 'zstd' | 'brotli' | 'snappy' | 'lz4' | 'none';

/** Every codec, for config validation and docs. */
export const CODECS: readonly Codec[] = ['gzip', 'zstd', 'brotli', 'snappy', 'lz4', 'none'];

const EXTENSIONS: Readonly<Record<string, Codec>> = {
  '.gz': 'gzip',
  '.gzip': 'gzip',
  '.zst': 'zstd',
  '.zstd': 'zstd',
  '.br': 'brotli',
  '.sz': 'snappy',
  '.snappy': 'snappy',
  '.lz4': 'lz4',
};

/** The usual file extension of a codec (for writers naming their files). */
export const EXTENSION_OF: Readonly<Record<Codec, string>> = {
  gzip: '.gz',
  zstd: '.zst',
  brotli: '.br',
  snappy: '.sz',
  lz4: '.lz4',
  none: '',
};

/**
 * The codec a path's extension names (`data.csv.gz` → `gzip`), or `undefined`. `.sz` is the
 * snappy *framing* format (what `snzip`, python-snappy and most tools write); raw or Hadoop
 * snappy has no standard extension and is not supported.
 *
 * @example
 * codecFromPath('in/events.csv.zst'); // 'zstd'
 */
export function codecFromPath(path: string): Codec | undefined {
  const dot = path.lastIndexOf('.');
  if (dot === -1 || path.indexOf('/', dot) !== -1) return undefined;
  return EXTENSIONS[path.slice(dot).toLowerCase()];
}

/** How many leading bytes {@link codecFromMagic} needs to decide. */
export const MAGIC_BYTES = 10;

/**
 * The codec whose magic number starts `head`, or `undefined`. Brotli has no magic number, so it
 * is found by extension only.
 *
 * @example
 * codecFromMagic(new Uint8Array([0x1f, 0x8b, 8, 0])); // 'gzip'
 */
export function codecFromMagic(head: Uint8Array): Codec | undefined {
  const b = head;
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 4) {
    const le = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
    if (le === 0xfd2fb528) return 'zstd';
    if (le === 0x184d2204) return 'lz4';
    // Skippable frames: zstd and lz4 share the range 0x184D2A50–5F; zstd writes them more often.
    if ((le & 0xfffffff0) === 0x184d2a50) return 'zstd';
  }
  if (
    b.length >= 10 &&
    b[0] === 0xff &&
    b[1] === 0x06 &&
    b[2] === 0 &&
    b[3] === 0 &&
    b[4] === 0x73 &&
    b[5] === 0x4e &&
    b[6] === 0x61 &&
    b[7] === 0x50 &&
    b[8] === 0x70 &&
    b[9] === 0x59
  ) {
    return 'snappy';
  }
  return undefined;
}

/**
 * Decides the codec of an input: a recognised magic number wins (a mislabelled file still
 * reads); otherwise the extension; otherwise `none`.
 *
 * @example
 * detectCodec('x.csv', new Uint8Array([0x28, 0xb5, 0x2f, 0xfd])); // 'zstd'
 */
export function detectCodec(path: string | undefined, head: Uint8Array): Codec {
  const byMagic = codecFromMagic(head);
  if (byMagic !== undefined) return byMagic;
  const byExt = path === undefined ? undefined : codecFromPath(path);
  return byExt ?? 'none';
}
